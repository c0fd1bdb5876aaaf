package cgroup

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
)

// BenchmarkSpawn compares the ways a child can start in its group, side by side:
// none (no group, the floor), v1's thread placement (Join), v1's alternative, a
// handshake through a helper process that waits on a pipe until the parent has moved
// it (a re-exec of the daemon's binary, here the test binary, before the real exec), and
// v2's clone into the group. Every round starts /bin/true and waits for it.
func BenchmarkSpawn(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("cgroups need root")
	}
	run := func(b *testing.B, cmd *exec.Cmd) {
		if err := cmd.Run(); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("none", func(b *testing.B) {
		for b.Loop() {
			run(b, exec.Command("/bin/true"))
		}
	})
	for mode, m := range benchManagers(b) {
		g, err := m.NewGroup(Functions, "bench", "1", Limits{Pids: 64})
		if err != nil {
			b.Fatal(err)
		}
		name := map[Mode]string{V1: "v1-thread", V2: "v2-clone-into"}[mode]
		b.Run(name, func(b *testing.B) {
			// Each benchmark runs on a goroutine of its own: lock it where Join is used.
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			for b.Loop() {
				cmd := exec.Command("/bin/true")
				cmd.SysProcAttr = &syscall.SysProcAttr{}
				release, err := g.Join(cmd.SysProcAttr)
				if err != nil {
					b.Fatal(err)
				}
				err = cmd.Start()
				release()
				if err != nil {
					b.Fatal(err)
				}
				cmd.Wait()
			}
		})
		if mode != V1 {
			continue
		}
		l := m.h.(*legacy)
		b.Run("v1-handshake", func(b *testing.B) {
			for b.Loop() {
				r, w, err := os.Pipe()
				if err != nil {
					b.Fatal(err)
				}
				cmd := helper("shim")
				cmd.ExtraFiles = []*os.File{r}
				if err := cmd.Start(); err != nil {
					b.Fatal(err)
				}
				r.Close()
				for _, t := range l.trees {
					if err := write(filepath.Join(t.root, g.rel), "cgroup.procs", strconv.Itoa(cmd.Process.Pid)); err != nil {
						b.Fatal(err)
					}
				}
				w.Write([]byte{1})
				w.Close()
				if err := cmd.Wait(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkNewGroup is what a replica's cold start pays before its fork: its group made
// in every hierarchy, with a memory, CPU and pids limit. Removing it, after the replica
// stopped, is not timed.
func BenchmarkNewGroup(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("cgroups need root")
	}
	lim := Limits{MemoryBytes: 128 << 20, CPUMillis: 500, Pids: 4096}
	for mode, m := range benchManagers(b) {
		b.Run(string(mode), func(b *testing.B) {
			i := 0
			for b.Loop() {
				i++
				g, err := m.NewGroup(Functions, "bench", strconv.Itoa(i), lim)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := g.Remove(context.Background()); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}

// BenchmarkUsage is the cost of one function's usage, as a metrics scrape or a status
// request pays it.
func BenchmarkUsage(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("cgroups need root")
	}
	for mode, m := range benchManagers(b) {
		if _, err := m.NewGroup(Functions, "bench", "1", Limits{}); err != nil {
			b.Fatal(err)
		}
		b.Run(string(mode), func(b *testing.B) {
			for b.Loop() {
				if _, err := m.Usage(Functions, "bench"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchManagers opens a manager of each hierarchy writable here, closed when b ends.
func benchManagers(b *testing.B) map[Mode]*Manager {
	out := map[Mode]*Manager{}
	for _, mode := range []Mode{V1, V2} {
		m, err := Open(context.Background(), Options{StateDir: b.TempDir(), Mode: mode})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { m.Close(context.Background()) })
		if m.Enabled() {
			out[mode] = m
		}
	}
	return out
}
