package supervisor

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"faasd/config"
	"faasd/internal/testkit"
)

// realSupervisor starts a supervisor over a fresh state dir; its log is returned too.
func realSupervisor(t *testing.T) (*Supervisor, *testkit.SyncBuffer) {
	t.Helper()
	bin := testkit.Bin(t)
	log := &testkit.SyncBuffer{}
	s, err := New(Options{StateDir: testkit.Dir(t), Exe: filepath.Join(bin, "faasd"), Logger: slog.New(slog.NewTextHandler(log, nil)), Accounts: testAccounts(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		s.Stop(ctx)
		if t.Failed() {
			t.Logf("supervisor log:\n%s", log.String())
		}
	})
	return s, log
}

// workload is a spec of the test workload with env and labels.
func workload(t *testing.T, name string, env map[string]string, labels map[string]string) *config.Function {
	t.Helper()
	f := &config.Function{
		Name: name, Command: []string{filepath.Join(testkit.Bin(t), "workload")}, Workdir: "/",
		Env: env, Labels: labels, ReadinessTimeout: 10 * time.Second, HealthInterval: time.Second,
		Timeout: 10 * time.Second, DrainTimeout: 10 * time.Second, StopGrace: 2 * time.Second,
	}
	if err := f.Validate(config.DefaultScalePolicy); err != nil {
		t.Fatal(err)
	}
	return f
}

func waitStatus(t *testing.T, s *Supervisor, name, what string, cond func(Status) bool) Status {
	t.Helper()
	return waitState(t, s.Status, name, what, cond)
}

// waitState waits until the state of a function or a service meets cond.
func waitState[S any](t *testing.T, get func(string) (S, bool), name, what string, cond func(S) bool) S {
	t.Helper()
	var st S
	testkit.WaitFor(t, 15*time.Second, what, func() bool {
		var ok bool
		st, ok = get(name)
		return ok && cond(st)
	})
	return st
}

// checkRestartDelays checks in the log that the pause before each restart doubles: no
// tight loop.
func checkRestartDelays(t *testing.T, log, failed string) {
	t.Helper()
	var delays []string
	for _, line := range strings.Split(log, "\n") {
		if _, after, ok := strings.Cut(line, "restart_in="); ok && strings.Contains(line, failed) {
			delays = append(delays, after)
		}
	}
	want := []string{"100ms", "200ms", "400ms", "800ms"}
	if len(delays) < 4 || strings.Join(delays[:4], " ") != strings.Join(want, " ") {
		t.Fatalf("restart delays %v, want %v", delays, want)
	}
}

func TestCrashingReplicaBacksOffExponentiallyAndShowsFailing(t *testing.T) {
	s, log := realSupervisor(t)
	s.Apply(map[string]*config.Function{"crash": workload(t, "crash", map[string]string{"EXIT_AT_START": "1"}, nil)})
	st := waitStatus(t, s, "crash", "4 failures", func(st Status) bool { return st.Failures >= 4 })
	if st.State != "failing" || !strings.Contains(st.LastError, "exit status 1") {
		t.Fatalf("status %+v", st)
	}
	checkRestartDelays(t, log.String(), "replica failed")
	// The output of the failed replicas is kept.
	lines, _, _ := mustLogs(t, s, "crash").Read(0)
	if len(lines) == 0 || lines[0].Text != "exiting at start as asked" || lines[0].Stream != "stderr" {
		t.Fatalf("logs %+v", lines)
	}
}

func mustLogs(t *testing.T, s *Supervisor, name string) *Logs {
	l, ok := s.Logs(name)
	if !ok {
		t.Fatalf("no logs for %s", name)
	}
	return l
}

func TestReplicaNeverReadyIsKilledAtReadinessTimeout(t *testing.T) {
	s, _ := realSupervisor(t)
	f := workload(t, "mute", map[string]string{"NO_LOCK": "1"}, nil)
	f.ReadinessTimeout = 200 * time.Millisecond
	s.Apply(map[string]*config.Function{"mute": f})
	st := waitStatus(t, s, "mute", "a readiness failure", func(st Status) bool { return st.Failures >= 1 })
	if !strings.Contains(st.LastError, "readiness_timeout") {
		t.Fatalf("last error %q", st.LastError)
	}
}

func TestScaleUpAndDown(t *testing.T) {
	s, _ := realSupervisor(t)
	s.Apply(map[string]*config.Function{"fn": workload(t, "fn", nil, nil)})
	waitStatus(t, s, "fn", "1 ready", func(st Status) bool { return st.Ready == 1 })
	if err := s.Scale("fn", 3); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, s, "fn", "3 ready", func(st Status) bool { return st.Ready == 3 && st.Desired == 3 })
	route, _ := s.Route("fn")
	if eps, _ := route.Endpoints(); len(eps) != 3 {
		t.Fatalf("%d endpoints routed", len(eps))
	}
	if err := s.Scale("fn", 1); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, s, "fn", "back to 1", func(st Status) bool { return st.Ready == 1 && len(st.Replicas) == 1 })
	if err := s.Scale("nope", 1); err == nil {
		t.Fatal("scaling an unknown function succeeded")
	}
}

func TestLeavingReplicaFinishesItsRequestsFirst(t *testing.T) {
	s, _ := realSupervisor(t)
	s.Apply(map[string]*config.Function{"fn": workload(t, "fn", nil, nil)})
	st := waitStatus(t, s, "fn", "1 ready", func(st Status) bool { return st.Ready == 1 })
	pid := st.Replicas[0].PID
	route, _ := s.Route("fn")
	eps, _ := route.Endpoints()
	if !eps[0].Acquire() { // a request in flight
		t.Fatal("acquire")
	}
	if err := s.Scale("fn", 0); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 5*time.Second, "the replica out of routing", func() bool {
		eps, _ := route.Endpoints()
		return len(eps) == 0
	})
	if eps[0].Acquire() {
		t.Fatal("a leaving replica accepted a new request")
	}
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("replica stopped with a request in flight: %v", err)
	}
	eps[0].Release()
	testkit.WaitFor(t, 10*time.Second, "the drained replica to stop", func() bool {
		return syscall.Kill(pid, 0) != nil
	})
}

func TestChangedSpecRollsOverWithoutAGap(t *testing.T) {
	s, _ := realSupervisor(t)
	s.Apply(map[string]*config.Function{"fn": workload(t, "fn", map[string]string{"VERSION": "1"}, nil)})
	waitStatus(t, s, "fn", "1 ready", func(st Status) bool { return st.Ready == 1 })
	route, _ := s.Route("fn")
	// Watch every published endpoint set during the rollover: never empty.
	var mu sync.Mutex
	empty := false
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			eps, changed := route.Endpoints()
			if len(eps) == 0 {
				mu.Lock()
				empty = true
				mu.Unlock()
			}
			select {
			case <-changed:
			case <-stop:
				return
			}
		}
	}()
	s.Apply(map[string]*config.Function{"fn": workload(t, "fn", map[string]string{"VERSION": "2", "READY_DELAY": "300ms"}, nil)})
	testkit.WaitFor(t, 10*time.Second, "the new replica alone", func() bool {
		st, _ := s.Status("fn")
		return len(st.Replicas) == 1 && st.Ready == 1 && route.Spec().Env["VERSION"] == "2"
	})
	close(stop)
	<-done
	if empty {
		t.Fatal("the routing table was empty during the rollover")
	}
}

// A controller busy with a slow step (here: waiting for a port) must hold up neither
// Apply nor the readers of Status: changed specs queue up as the latest one only.
func TestApplyAndStatusDoNotWaitForABusyController(t *testing.T) {
	s, _ := realSupervisor(t)
	s.Apply(map[string]*config.Function{"fn": workload(t, "fn", nil, nil)})
	s.ports.mu.Lock()
	locked := true
	defer func() {
		if locked {
			s.ports.mu.Unlock()
		}
	}()
	applied := make(chan struct{})
	go func() {
		defer close(applied)
		for i := range 100 {
			s.Apply(map[string]*config.Function{"fn": workload(t, "fn", map[string]string{"VERSION": strconv.Itoa(i)}, nil)})
		}
	}()
	answered := make(chan struct{})
	go func() {
		<-applied
		s.Status("fn")
		close(answered)
	}()
	select {
	case <-answered:
	case <-time.After(5 * time.Second):
		t.Fatal("Apply and Status blocked behind a busy controller")
	}
	s.ports.mu.Unlock()
	locked = false
	testkit.WaitFor(t, 10*time.Second, "the last spec", func() bool {
		r, _ := s.Route("fn")
		return r.Spec().Env["VERSION"] == "99"
	})
}

// A root daemon writes below its state dir on everyone's behalf: a state dir that another
// account may write in could have run/ swapped for a link between two of its calls.
func TestStateDirOthersCanWriteInIsRefused(t *testing.T) {
	for name, prepare := range map[string]func(string) error{
		"writable by all":       func(d string) error { return os.Chmod(d, 0o777) },
		"another account's":     func(d string) error { return os.Chown(d, 65534, 65534) },
		"writable by its group": func(d string) error { return os.Chmod(d, 0o775) },
	} {
		t.Run(name, func(t *testing.T) {
			state := testkit.Dir(t)
			if err := prepare(state); err != nil {
				t.Fatal(err)
			}
			_, err := New(Options{StateDir: state, Exe: filepath.Join(testkit.Bin(t), "faasd"), Logger: discard, Accounts: testAccounts(t)})
			if err == nil || !strings.Contains(err.Error(), "needs it root's, writable by root alone") {
				t.Fatalf("New = %v", err)
			}
		})
	}
}
