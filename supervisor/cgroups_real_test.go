package supervisor

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"faasd/cgroup"
	"faasd/config"
	"faasd/internal/testkit"
)

// The lifecycle in real cgroups: v1 where its controllers are mounted, v2 on its
// hierarchy (on a hybrid machine, the unified mount without controllers: clone-into,
// kill-all and emptiness are real there, limits and memory usage are not).

// openCgroups opens the daemon's cgroups in mode over a fresh state dir, or skips where
// that hierarchy cannot be written. At the test's end they are closed, and must be gone.
func openCgroups(t *testing.T, mode cgroup.Mode) *cgroup.Manager {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("cgroups need root")
	}
	m, err := cgroup.Open(context.Background(), cgroup.Options{StateDir: testkit.Dir(t), Mode: mode})
	if err != nil {
		t.Fatal(err)
	}
	if mode != cgroup.None && !m.Enabled() {
		m.Close(context.Background())
		t.Skipf("cgroup %s is not writable here: %s", mode, m.Status().Warning)
	}
	t.Cleanup(func() {
		if err := m.Close(context.Background()); err != nil {
			t.Errorf("close cgroups: %v", err)
		}
		for _, root := range m.Status().Groups {
			if _, err := os.Stat(root); err == nil {
				t.Errorf("%s survives", root)
			}
		}
	})
	return m
}

// containedProcesses starts programs the way services are started, in cgroups of m.
func containedProcesses(m *cgroup.Manager) *processes {
	st := newForkStarter("")
	st.groups = newContainment(m, discard)
	return newProcesses(st)
}

// containedLaunch is a launch of sh -c script as the replica id of function fn.
func containedLaunch(t *testing.T, fn, id, script string, out output) (*launch, string) {
	l, marker := realLaunch(t, script, out)
	l.name = groupName{kind: cgroup.Functions, unit: fn, instance: id}
	return l, marker
}

func TestStopTakesASetsidGrandchildInACgroupOnly(t *testing.T) {
	for _, mode := range []cgroup.Mode{cgroup.V1, cgroup.V2, cgroup.None} {
		t.Run(string(mode), func(t *testing.T) {
			m := openCgroups(t, mode)
			procs := containedProcesses(m)
			out := &lineBuffer{max: 100}
			// A program that puts a child in a session of its own, as a daemonizing
			// program does, and says its pid.
			l, marker := containedLaunch(t, "fn", "1", "setsid sleep 1000 & echo $!; wait", out)
			p, err := procs.start(l)
			if err != nil {
				t.Fatal(err)
			}
			var grandchild int
			testkit.WaitFor(t, 5*time.Second, "the grandchild's pid", func() bool {
				grandchild, err = strconv.Atoi(out.String())
				return err == nil
			})
			if mode != cgroup.None {
				data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", grandchild))
				if !strings.Contains(string(data), "/functions/fn/1\n") {
					t.Errorf("grandchild is not in the replica's cgroup:\n%s", data)
				}
			}
			p.stop(time.Second)
			if mode == cgroup.None {
				// What process groups cannot do: the grandchild left the program's
				// process group, and outlives it.
				if !testkit.Alive(grandchild) {
					t.Fatal("without cgroups the grandchild died too: the test proves nothing")
				}
				syscall.Kill(grandchild, syscall.SIGKILL)
				return
			}
			if testkit.Alive(grandchild) {
				t.Errorf("grandchild %d survives the stop", grandchild)
			}
			if pids := testkit.ProcessesWith(marker); len(pids) > 0 {
				t.Errorf("processes left: %v", pids)
			}
		})
	}
}

func TestProgramOverItsMemoryLimitIsReportedOutOfMemory(t *testing.T) {
	m := openCgroups(t, cgroup.V1)
	if !m.Status().Limits {
		t.Skipf("limits are not enforced here: %s", m.Status().Warning)
	}
	limit, err := config.ParseMemory("16Mi")
	if err != nil {
		t.Fatal(err)
	}
	// tail keeps the line it reads, and /dev/zero has no end of line.
	l, _ := containedLaunch(t, "hog", "1", "exec tail /dev/zero", &lineBuffer{max: 100})
	l.limits = config.Limits{Memory: limit, Pids: config.DefaultPids}
	p, err := containedProcesses(m).start(l)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		p.kill()
		t.Fatal("still running 30s over its memory limit")
	}
	if err := p.exitError(); !isOutOfMemory(err) || err.Error() != "out of memory (limit 16Mi)" {
		t.Errorf("exit error %v, want out of memory (limit 16Mi)", err)
	}
	// One of ours that we kill is not the OOM killer's doing.
	l, _ = containedLaunch(t, "hog", "2", "exec sleep 1000", &lineBuffer{max: 100})
	l.limits = config.Limits{Memory: limit}
	p, err = containedProcesses(m).start(l)
	if err != nil {
		t.Fatal(err)
	}
	p.kill()
	if err := p.exitError(); isOutOfMemory(err) {
		t.Errorf("a kill reads as %v", err)
	}
}

func TestUsageIsSampledFromTheCgroups(t *testing.T) {
	m := openCgroups(t, cgroup.V1)
	procs := containedProcesses(m)
	out := &lineBuffer{max: 100}
	// Busy for a while, then idle until stopped.
	l, _ := containedLaunch(t, "busy", "7", "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; echo busy; exec sleep 1000", out)
	p, err := procs.start(l)
	if err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 60*time.Second, "the busy loop to end", func() bool { return out.String() == "busy" })
	s := &usageSampler{cg: m, kind: cgroup.Functions, procs: procs}
	start := time.Now()
	first := s.sample(&usageSample{at: start, units: map[string]unitUsage{}}, start)
	fn, ok := first.units["busy"]
	replica := fn.instances["7"]
	if !ok || replica.CPU < time.Millisecond || replica.MemoryBytes == 0 || fn.CPU < replica.CPU || fn.MemoryBytes != replica.MemoryBytes {
		t.Fatalf("usage of the function %+v, of its replica %+v", fn, replica)
	}
	if fn.CPUMillis != 0 {
		t.Errorf("a CPU rate of %v from a first reading", fn.CPUMillis)
	}
	// Idle now: over a second, far less than a CPU.
	second := s.sample(first, start.Add(time.Second))
	if r := second.units["busy"].CPUMillis; r < 0 || r > 500 {
		t.Errorf("an idle function uses %v millicores", r)
	}
	// Its CPU time outlives the replica's group; its memory does not.
	p.stop(time.Second)
	gone := s.sample(second, start.Add(2*time.Second))
	if u, ok := gone.units["busy"]; !ok || u.CPU < fn.CPU || u.MemoryBytes != 0 || len(u.instances) != 0 {
		t.Errorf("usage after the replica went: %+v", u)
	}
	newContainment(m, discard).forget(cgroup.Functions, "busy", nil)
	if u, ok := s.sample(gone, start.Add(3*time.Second)).units["busy"]; ok {
		t.Errorf("usage of a forgotten function: %+v", u)
	}
}

// A thousand starts and stops, half of them in a replica's mount namespace, leave no file
// descriptor, goroutine, zombie or cgroup behind: in the hierarchy the daemon picks here,
// and a hundred in the other one.
func TestThousandStartsAndStopsLeaveNothingBehind(t *testing.T) {
	picked := openCgroups(t, "")
	other := map[cgroup.Mode]cgroup.Mode{cgroup.V1: cgroup.V2, cgroup.V2: cgroup.V1}[picked.Status().Mode]
	t.Run(string(picked.Status().Mode), func(t *testing.T) { startAndStop(t, picked, 1000) })
	if other != "" {
		t.Run(string(other), func(t *testing.T) { startAndStop(t, openCgroups(t, other), 100) })
	}
}

func startAndStop(t *testing.T, m *cgroup.Manager, cycles int) {
	if !m.Enabled() {
		t.Skipf("no cgroups here: %s", m.Status().Warning)
	}
	st := newForkStarter(os.Args[0])
	st.iso = isolateMountNS
	st.groups = newContainment(m, discard)
	procs := newProcesses(st)
	tmp := testkit.Dir(t)
	cycle := func(i int) {
		l, _ := containedLaunch(t, "cycle", strconv.Itoa(i), "exec sleep 1000", &lineBuffer{max: 100})
		if i%2 == 0 {
			l.tmp = tmp // forked in a mount namespace of its own
		}
		p, err := procs.start(l)
		if err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
		p.stop(5 * time.Second)
		if !strings.Contains(fmt.Sprint(p.err), "terminated") {
			t.Fatalf("cycle %d: exit %v, want SIGTERM", i, p.err)
		}
	}
	cycle(0) // the spawning thread exists from now on
	fds, goroutines := openFDs(t), runtime.NumGoroutine()
	begin := time.Now()
	for i := 1; i <= cycles; i++ {
		cycle(i)
	}
	t.Logf("%d starts and stops in %v", cycles, time.Since(begin).Round(time.Millisecond))
	testkit.WaitFor(t, 10*time.Second, "goroutines back to where they were", func() bool {
		return runtime.NumGoroutine() <= goroutines
	})
	if now := openFDs(t); now != fds {
		t.Errorf("%d file descriptors open, %d before", now, fds)
	}
	if z := testkit.Zombies(os.Getpid()); len(z) > 0 {
		t.Errorf("zombies: %v", z)
	}
	for _, root := range m.Status().Groups {
		if left := subgroups(filepath.Join(root, "functions", "cycle")); len(left) > 0 {
			t.Errorf("%d cgroups left in %s: %v", len(left), root, left[:min(3, len(left))])
		}
	}
}

// subgroups lists the groups below a group.
func subgroups(dir string) []string {
	entries, _ := os.ReadDir(dir)
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}

func openFDs(t *testing.T) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

func TestReplicasAndServicesRunInCgroupsThatGoWithThem(t *testing.T) {
	m := openCgroups(t, cgroup.V1)
	log := &testkit.SyncBuffer{}
	state := testkit.Dir(t)
	ids := testAccounts(t)
	s, err := New(Options{StateDir: state, Exe: filepath.Join(testkit.Bin(t), "faasd"), Logger: slog.New(slog.NewTextHandler(log, nil)), Accounts: ids, Cgroups: m})
	if err != nil {
		t.Fatal(err)
	}
	svcs := NewServices(ServiceOptions{Logger: slog.New(slog.NewTextHandler(log, nil)), Accounts: ids, Cgroups: m})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		s.Stop(ctx)
		svcs.Stop(ctx)
		if t.Failed() {
			t.Logf("log:\n%s", log.String())
		}
	})
	root := m.Status().Groups[0]

	fn := workload(t, "fn", nil, nil)
	s.Apply(map[string]*config.Function{"fn": fn})
	st := waitStatus(t, s, "fn", "a replica with its usage", func(st Status) bool {
		return st.Ready == 1 && st.Usage != nil && st.Usage.MemoryBytes > 0 && st.Replicas[0].Usage != nil
	})
	if in := groupOf(t, st.Replicas[0].PID, "freezer"); !strings.HasSuffix(in, "/functions/fn/"+st.Replicas[0].ID) {
		t.Errorf("replica in %s", in)
	}
	if st.Usage.MemoryBytes != st.Replicas[0].Usage.MemoryBytes || st.Usage.CPU < st.Replicas[0].Usage.CPU {
		t.Errorf("function usage %+v, its only replica's %+v", st.Usage, st.Replicas[0].Usage)
	}

	spec, _ := serviceSpec(t, state, "db", nil)
	if spec.Limits.Memory, err = config.ParseMemory("256Mi"); err != nil {
		t.Fatal(err)
	}
	spec.Limits.Pids = 64
	svcs.Apply(map[string]*config.Service{"db": spec})
	sst := waitService(t, svcs, "db", "the service with its usage", func(st ServiceStatus) bool {
		return st.State == "ready" && st.Usage != nil && st.Usage.MemoryBytes > 0
	})
	if in := groupOf(t, sst.PID, "freezer"); !strings.HasSuffix(in, "/services/db/1") {
		t.Errorf("service in %s", in)
	}
	// Its limits, as a replica's.
	for _, f := range []struct{ controller, file, want string }{
		{"memory", "memory.limit_in_bytes", strconv.Itoa(256 << 20)},
		{"pids", "pids.max", "64"},
	} {
		data, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", f.controller, groupOf(t, sst.PID, f.controller), f.file))
		if got := strings.TrimSpace(string(data)); err != nil || got != f.want {
			t.Errorf("%s of the service: %q (%v), want %s", f.file, got, err, f.want)
		}
	}

	// Removed, each takes its groups with it.
	s.Apply(nil)
	svcs.Apply(nil)
	for _, dir := range []string{filepath.Join(root, "functions", "fn"), filepath.Join(root, "services", "db")} {
		testkit.WaitFor(t, 10*time.Second, dir+" to go", func() bool {
			_, err := os.Stat(dir)
			return os.IsNotExist(err)
		})
	}
}

// groupOf returns the cgroup of a process in the hierarchy of a v1 controller.
func groupOf(t *testing.T, pid int, controller string) string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if parts := strings.SplitN(line, ":", 3); len(parts) == 3 && parts[1] == controller {
			return parts[2]
		}
	}
	t.Fatalf("no %s group in\n%s", controller, data)
	return ""
}
