package cgroup

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The tests below run against the kernel: v1 where its controllers are mounted, v2 on
// its hierarchy (on a hybrid machine, the unified mount without controllers: there,
// limits are skipped, but clone-into, kill-all and emptiness are real).
var modes = []Mode{V1, V2}

func TestChildStartsInItsGroupAndThreadReturns(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			m := openManager(t, mode)
			g, err := m.NewGroup(Functions, "hello", "1", Limits{})
			if err != nil {
				t.Fatal(err)
			}
			cmd := helper("sleep")
			var threadAfter string
			start(t, g, cmd, func() {
				data, _ := os.ReadFile("/proc/thread-self/cgroup")
				threadAfter = string(data)
			})
			data, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/cgroup")
			if err != nil {
				t.Fatal(err)
			}
			child := parseProcCgroup(data)
			for _, c := range groupKeys(mode, m, Limits{}) {
				if !strings.HasSuffix(child[c], "/functions/hello/1") {
					t.Errorf("%s: child in %q, want its group", label(c), child[c])
				}
			}
			self, _ := os.ReadFile("/proc/self/cgroup")
			if threadAfter != string(self) {
				t.Errorf("the spawning thread did not return:\n%s\nthe process is in:\n%s", threadAfter, self)
			}
			pids, _ := g.Pids()
			if len(pids) != 1 || pids[0] != cmd.Process.Pid {
				t.Errorf("pids %v, want [%d]", pids, cmd.Process.Pid)
			}
		})
	}
}

// groupKeys are the membership keys /proc/PID/cgroup shows a group with lim under.
func groupKeys(mode Mode, m *Manager, lim Limits) []string {
	if mode == V2 {
		return []string{""}
	}
	var keys []string
	for _, t := range m.h.(*legacy).trees {
		if t.holds(lim) {
			keys = append(keys, t.controllers...)
		}
	}
	return keys
}

// The cpu controller schedules a group as one task: a process without a CPU limit runs
// in the daemon's own cpu group, one with a limit in its own.
func TestOnlyACPULimitMakesACPUGroup(t *testing.T) {
	m := openManager(t, V1)
	var cpu *tree
	for i, tr := range m.h.(*legacy).trees {
		if slices.Contains(tr.controllers, "cpu") {
			cpu = &m.h.(*legacy).trees[i]
		}
	}
	if cpu == nil || slices.Contains(cpu.controllers, "cpuacct") {
		t.Skip("no cpu hierarchy of its own here (mounted with cpuacct, which counts usage)")
	}
	own := parseProcCgroup(mustRead(t, "/proc/self/cgroup"))["cpu"]
	for _, tc := range []struct {
		name    string
		lim     Limits
		ownTree bool
	}{
		{"plain", Limits{MemoryBytes: 64 << 20, Pids: 32}, false},
		{"capped", Limits{CPUMillis: 500}, true},
	} {
		g, err := m.NewGroup(Functions, tc.name, "1", tc.lim)
		if err != nil {
			t.Fatal(err)
		}
		cmd := helper("sleep")
		start(t, g, cmd)
		in := parseProcCgroup(mustRead(t, "/proc/"+strconv.Itoa(cmd.Process.Pid)+"/cgroup"))
		if want := "/functions/" + tc.name + "/1"; strings.HasSuffix(in["cpu"], want) != tc.ownTree {
			t.Errorf("%s: in cpu group %q (the daemon's is %q); a group of its own: %v", tc.name, in["cpu"], own, tc.ownTree)
		}
		if !tc.ownTree && in["cpu"] != own {
			t.Errorf("%s: in cpu group %q, want the daemon's %q", tc.name, in["cpu"], own)
		}
		if !strings.HasSuffix(in["cpuacct"], "/functions/"+tc.name+"/1") {
			t.Errorf("%s: in cpuacct group %q, want its own: usage is counted there", tc.name, in["cpuacct"])
		}
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func label(c string) string {
	if c == "" {
		return "v2"
	}
	return c
}

func TestKillTakesSetsidGrandchild(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			m := openManager(t, mode)
			g, err := m.NewGroup(Functions, "tree", "1", Limits{Pids: 64})
			if err != nil {
				t.Fatal(err)
			}
			cmd := helper("tree")
			line := firstLine(t, cmd)
			start(t, g, cmd)
			grandchild, err := strconv.Atoi(line())
			if err != nil {
				t.Fatalf("helper said %v", err)
			}
			if pids, _ := g.Pids(); len(pids) != 2 {
				t.Fatalf("pids in the group %v, want the child and the grandchild", pids)
			}
			// What stopping by process group alone leaves behind.
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			cmd.Wait()
			if !alive(grandchild) {
				t.Fatal("the grandchild died with the process group: the test proves nothing")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := g.Kill(ctx); err != nil {
				t.Fatal(err)
			}
			if err := g.Wait(ctx); err != nil {
				t.Fatal(err)
			}
			if alive(grandchild) {
				t.Errorf("grandchild %d survives Kill", grandchild)
			}
			if err := g.Remove(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestMemoryLimitOOMKillsAndIsCounted(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			m := openManager(t, mode)
			if !m.Status().Limits {
				t.Skipf("limits are not enforced by %s here: %s", mode, m.Status().Warning)
			}
			g, err := m.NewGroup(Functions, "hog", "1", Limits{MemoryBytes: 48 << 20, Pids: 64})
			if err != nil {
				t.Fatal(err)
			}
			cmd := helper("hog")
			var out strings.Builder
			cmd.Stdout = &out
			start(t, g, cmd)
			err = cmd.Wait()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("the hog ended with %v (%q), want SIGKILL", err, out.String())
			}
			n, err := g.OOMKills()
			if err != nil || n < 1 {
				t.Errorf("OOM kills %d, %v; want at least 1", n, err)
			}
		})
	}
}

func TestLimitsReachTheKernel(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			m := openManager(t, mode)
			if !m.Status().Limits {
				t.Skipf("limits are not enforced by %s here", mode)
			}
			g, err := m.NewGroup(Functions, "capped", "1", Limits{MemoryBytes: 64 << 20, CPUMillis: 100, Pids: 32})
			if err != nil {
				t.Fatal(err)
			}
			read := func(controller, file string) string {
				var dir string
				if mode == V2 {
					dir = filepath.Join(m.h.roots()[0], g.rel)
				} else {
					dir, _ = m.h.(*legacy).dirOf(controller, g.rel)
				}
				data, err := os.ReadFile(filepath.Join(dir, file))
				if err != nil {
					t.Fatal(err)
				}
				return strings.TrimSpace(string(data))
			}
			want := map[[2]string]string{
				{"memory", "memory.limit_in_bytes"}: "67108864", {"cpu", "cpu.cfs_quota_us"}: "10000",
				{"cpu", "cpu.cfs_period_us"}: "100000", {"pids", "pids.max"}: "32",
			}
			if mode == V2 {
				want = map[[2]string]string{{"memory", "memory.max"}: "67108864", {"cpu", "cpu.max"}: "10000 100000", {"pids", "pids.max"}: "32"}
			}
			for k, v := range want {
				if got := read(k[0], k[1]); got != v {
					t.Errorf("%s = %q, want %q", k[1], got, v)
				}
			}
			// The quota is enforced: a busy process at a tenth of a CPU is throttled.
			cmd := helper("burn")
			start(t, g, cmd)
			waitFor(t, 20*time.Second, "the CPU quota to throttle a busy process", func() bool {
				n, _ := readKey(mustDir(m, "cpu", g.rel), "cpu.stat", "nr_throttled")
				return n > 0
			})
		})
	}
}

func mustDir(m *Manager, controller, rel string) string {
	if l, ok := m.h.(*legacy); ok {
		d, _ := l.dirOf(controller, rel)
		return d
	}
	return filepath.Join(m.h.roots()[0], rel)
}

func TestUsageIsRead(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			m := openManager(t, mode)
			g, err := m.NewGroup(Functions, "burner", "1", Limits{})
			if err != nil {
				t.Fatal(err)
			}
			cmd := helper("burn")
			line := firstLine(t, cmd)
			start(t, g, cmd)
			if got := line(); got != "burnt" {
				t.Fatalf("helper said %q", got)
			}
			u, err := g.Usage()
			if err != nil {
				t.Fatal(err)
			}
			if u.CPU < 100*time.Millisecond {
				t.Errorf("CPU %v after a busy loop that used 300ms of CPU", u.CPU)
			}
			if slices.Contains(m.Status().Controllers, "memory") && u.MemoryBytes < 16<<20 {
				t.Errorf("memory %d after touching 16MiB", u.MemoryBytes)
			}
			fn, err := m.Usage(Functions, "burner")
			if err != nil || fn.CPU < u.CPU || fn.MemoryBytes < u.MemoryBytes {
				t.Errorf("function usage %+v (%v) below its replica's %+v", fn, err, u)
			}
			// CPU time survives the replica's group: the function's counter never
			// goes back.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := g.Remove(ctx); err != nil {
				t.Fatal(err)
			}
			cmd.Wait()
			after, err := m.Usage(Functions, "burner")
			if err != nil || after.CPU < fn.CPU {
				t.Errorf("function CPU %v after its replica's group went, was %v (%v)", after.CPU, fn.CPU, err)
			}
		})
	}
}

func TestOpenRemovesWhatAKilledPredecessorLeft(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			m := openManager(t, mode)
			g, err := m.NewGroup(Functions, "left", "7", Limits{})
			if err != nil {
				t.Fatal(err)
			}
			cmd := helper("tree")
			line := firstLine(t, cmd)
			start(t, g, cmd)
			grandchild, _ := strconv.Atoi(line())
			if _, err := m.NewGroup(Services, "db", "1", Limits{}); err != nil {
				t.Fatal(err)
			}
			// The predecessor dies without cleaning up: only its lock goes.
			m.lock.Close()
			dir := filepath.Dir(m.lock.Name())
			next, err := Open(context.Background(), Options{StateDir: dir, Mode: mode})
			if err != nil {
				t.Fatal(err)
			}
			defer next.Close(context.Background())
			cmd.Wait()
			if alive(cmd.Process.Pid) || alive(grandchild) {
				t.Errorf("a process of the previous run survives: child %v, grandchild %v", alive(cmd.Process.Pid), alive(grandchild))
			}
			for _, root := range next.Status().Groups {
				if left, _ := subdirs(root); len(left) > 0 {
					t.Errorf("%s still has %v", root, left)
				}
			}
		})
	}
}

// A daemon whose own v2 group systemd delegated (marked with trusted.delegate) keeps its
// groups inside it, where the unit's stop and accounting reach them.
func TestDelegatedSubtreeHoldsTheGroups(t *testing.T) {
	m := openManager(t, V2)
	unit, err := m.NewGroup(Services, "unit", "1", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(m.h.roots()[0], unit.rel)
	if err := unix.Setxattr(dir, "trusted.delegate", []byte("1"), 0); err != nil {
		t.Skipf("cannot mark a group delegated here: %v", err)
	}
	cmd := helper("open")
	cmd.Env = append(cmd.Env, "CGROUP_TEST_STATE="+t.TempDir(), "CGROUP_TEST_MODE=v2")
	var out strings.Builder
	cmd.Stdout = &out
	start(t, unit, cmd)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if got := strings.TrimSpace(out.String()); !strings.HasPrefix(got, dir+"/faasd/") {
		t.Errorf("the daemon's groups are at %q, want them below its delegated group %s", got, dir)
	}
	if left, _ := subdirs(dir); len(left) != 0 {
		t.Errorf("left in the delegated group after Close: %v", left)
	}
}

// A spawning thread that joined a v1 group and never came back must not be frozen or
// signalled with it, nor keep it from being removed.
func TestAThreadLeftInAGroupIsNotKilledWithIt(t *testing.T) {
	m := openManager(t, V1)
	g, err := m.NewGroup(Functions, "stray", "1", Limits{Pids: 64})
	if err != nil {
		t.Fatal(err)
	}
	cmd := helper("sleep")
	start(t, g, cmd)
	joined := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if _, err := g.h.join(g.rel, g.limits, nil); err != nil { // never released
			t.Error(err)
		}
		close(joined)
	}()
	<-joined
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	if alive(cmd.Process.Pid) {
		t.Error("the replica survives")
	}
}

func TestSecondDaemonOnOneStateDirIsRefused(t *testing.T) {
	dir := t.TempDir()
	m, err := Open(context.Background(), Options{StateDir: dir, Mode: None})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	if _, err := Open(context.Background(), Options{StateDir: dir, Mode: None}); err == nil || !strings.Contains(err.Error(), "in use by another faasd") {
		t.Errorf("second open: %v", err)
	}
}

func TestInstancesWithOtherStateDirsDoNotTouchEachOther(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			a := openManager(t, mode)
			b := openManager(t, mode)
			ga, err := a.NewGroup(Functions, "same", "1", Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := b.NewGroup(Functions, "same", "1", Limits{}); err != nil {
				t.Fatal(err)
			}
			cmd := helper("sleep")
			start(t, ga, cmd)
			if err := b.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			if !alive(cmd.Process.Pid) {
				t.Error("closing one instance killed another's process")
			}
		})
	}
}

func TestWithoutCgroupsGroupsAreUnavailable(t *testing.T) {
	m, err := Open(context.Background(), Options{StateDir: t.TempDir(), Mode: None})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	st := m.Status()
	if st.Mode != None || st.Limits || !strings.Contains(st.Warning, "limits are not enforced") {
		t.Errorf("status %+v", st)
	}
	if _, err := m.NewGroup(Functions, "f", "1", Limits{}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("NewGroup: %v", err)
	}
}
