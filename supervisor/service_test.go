package supervisor

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"faasd/config"
)

// The rules of a service's life, on the pretend machine (pretend_test.go).

func oneService(s *config.Service) map[string]*config.Service {
	return map[string]*config.Service{s.Name: s}
}

func serviceStatus(t *testing.T, m *Services, name string) ServiceStatus {
	t.Helper()
	return mustState(t, m.Status, name)
}

func TestServiceRunsInitThenStartsAndIsReadyOnceItsPortAccepts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, pm := pretendServices(t)
		spec := pretendService(t, "db", map[string]string{"NO_LISTEN": "1"})
		spec.Init = []string{"exit", "0", "2s"}
		changed := m.Changed()
		m.Apply(oneService(spec))
		<-changed // the gate in front of the functions hears of every change
		advance(2 * time.Second)
		starts := pm.started("workload")
		if inits := pm.started("exit"); len(inits) != 1 || len(starts) != 1 || starts[0].started.Sub(inits[0].started) != 2*time.Second {
			t.Fatalf("%d inits and %d starts, want the start when init has ended", len(inits), len(starts))
		}
		if st := serviceStatus(t, m, "db"); st.State != "starting" || st.PID != starts[0].pid || m.Ready("db") {
			t.Fatalf("not listening yet: %+v", st)
		}
		// Polled every 100ms: a database opens its port and tells nobody.
		starts[0].do(func() bool { starts[0].listen(true); return false })
		advance(readyPoll)
		if st := serviceStatus(t, m, "db"); st.State != "ready" || st.Restarts != 0 || st.Failures != 0 || st.ReadyAt.Sub(st.Started) != 2*time.Second+readyPoll {
			t.Errorf("status %+v", st)
		}
		logs, _ := m.Logs("db")
		lines, _, _ := logs.Read(0)
		if len(lines) != 1 || lines[0].Replica != "init" || lines[0].Text != "exiting with 0" {
			t.Errorf("logs %+v, want init's output", lines)
		}
		env := envOf(starts[0].l)
		if env["DATA_DIR"] != spec.DataDir || env["HOME"] != spec.DataDir || starts[0].l.tmp != "" || starts[0].l.dir != "/" {
			t.Errorf("launched with env %v, private /tmp %q, workdir %q", env, starts[0].l.tmp, starts[0].l.dir)
		}
	})
}

func TestServiceKilledForMemoryIsReportedCountedAndRestarted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, pm := pretendServices(t)
		spec := pretendService(t, "db", nil)
		var err error
		if spec.Limits.Memory, err = config.ParseMemory("1Gi"); err != nil {
			t.Fatal(err)
		}
		m.Apply(oneService(spec))
		advance(readyPoll)
		first := pm.started("workload")[0]
		if first.l.limits != spec.Limits || first.l.name.String() != "services/db/1" {
			t.Fatalf("launched as %s with limits %+v", first.l.name, first.l.limits)
		}
		first.outOfMemory()
		synctest.Wait()
		if st := serviceStatus(t, m, "db"); st.LastError != "out of memory (limit 1Gi)" || st.OOMKills != 1 || st.State != "failing" {
			t.Errorf("status %+v", st)
		}
		advance(100 * time.Millisecond)
		if n := len(pm.started("workload")); n != 2 {
			t.Errorf("%d starts, want a restart after the pause", n)
		}
	})
}

func TestServiceFailuresBackOffLikeReplicas(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, pm := pretendServices(t)
		m.Apply(oneService(pretendService(t, "db", map[string]string{"EXIT_AT_START": "1"})))
		advance(1600 * time.Millisecond)
		want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond}
		if got := gaps(pm.started("workload")); !slices.Equal(got, want) {
			t.Errorf("pauses between starts %v, want %v", got, want)
		}
		st := serviceStatus(t, m, "db")
		if st.State != "failing" || st.Failures != 5 || st.Restarts != 4 || st.LastError != "process exited: exit status 1: exiting at start as asked" {
			t.Errorf("status %+v", st)
		}
		if err := m.WaitReady(context.Background()); err == nil || !strings.Contains(err.Error(), "service db did not become ready: process exited: exit status 1") {
			t.Errorf("WaitReady = %v", err)
		}
	})
}

func TestServiceOrItsInitNotReadyInTimeIsKilledAndRetried(t *testing.T) {
	for _, c := range []struct {
		name string
		init []string
		err  string
		prog string
	}{
		{"port never opens", nil, "not ready within ready_timeout (10s): dial tcp 127.0.0.1:5432: connection refused", "workload"},
		{"init never ends", []string{"hang"}, "init: not done within ready_timeout (10s)", "hang"},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				m, pm := pretendServices(t)
				spec := pretendService(t, "db", map[string]string{"NO_LISTEN": "1"})
				spec.Init = c.init
				m.Apply(oneService(spec))
				advance(10*time.Second + 100*time.Millisecond)
				progs := pm.started(c.prog)
				if got, want := progs[0].signalsSeen(), signals(syscall.SIGKILL, 10*time.Second); !slices.Equal(got, want) {
					t.Errorf("signals %v, want %v", got, want)
				}
				if len(progs) != 2 {
					t.Errorf("%d attempts, want a second one 100ms after the kill", len(progs))
				}
				if st := serviceStatus(t, m, "db"); st.Failures != 1 || st.LastError != c.err {
					t.Errorf("status %+v, want the error %q", st, c.err)
				}
			})
		})
	}
}

func TestServiceStopsWithGrace(t *testing.T) {
	for _, c := range []struct {
		name string
		env  map[string]string
		want []signalAt
	}{
		{"SIGTERM", nil, signals(syscall.SIGTERM, time.Duration(0))},
		{"SIGKILL stop_grace after an ignored SIGTERM", map[string]string{"IGNORE_TERM": "1"},
			signals(syscall.SIGTERM, time.Duration(0), syscall.SIGKILL, 5*time.Second)},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				m, pm := pretendServices(t)
				m.Apply(oneService(pretendService(t, "db", c.env)))
				synctest.Wait()
				if err := m.Stop(context.Background()); err != nil {
					t.Fatal(err)
				}
				if got := pm.started("workload")[0].signalsSeen(); !slices.Equal(got, c.want) {
					t.Errorf("signals %v, want %v", got, c.want)
				}
			})
		})
	}
}

func TestChangedServiceSpecRestartsAtOnceEvenWhileBackingOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, pm := pretendServices(t)
		m.Apply(oneService(pretendService(t, "db", map[string]string{"EXIT_AT_START": "1"})))
		advance(time.Second)
		failed := len(pm.started("workload"))
		m.Apply(oneService(pretendService(t, "db", map[string]string{"VERSION": "2"})))
		synctest.Wait()
		started := pm.started("workload")
		if len(started) != failed+1 || started[failed].env["VERSION"] != "2" || started[failed].started != time.Now() {
			t.Fatalf("%d started, want the new spec at once", len(started))
		}
		advance(readyPoll)
		if st := serviceStatus(t, m, "db"); st.State != "ready" || st.Failures != 0 || st.Restarts != 0 {
			t.Errorf("status %+v", st)
		}
		// And a running one stops (with grace) and starts with the next spec.
		m.Apply(oneService(pretendService(t, "db", map[string]string{"VERSION": "3"})))
		synctest.Wait()
		if sigs := started[failed].signalsSeen(); len(sigs) != 1 || sigs[0].sig != syscall.SIGTERM {
			t.Errorf("the running version got %v, want SIGTERM", sigs)
		}
		if latest := pm.started("workload"); latest[len(latest)-1].env["VERSION"] != "3" {
			t.Errorf("version 3 not started")
		}
	})
}

func TestReaddedServiceStartsOnceTheRemovedOneHasStopped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, pm := pretendServices(t)
		spec := pretendService(t, "db", map[string]string{"IGNORE_TERM": "1"})
		m.Apply(oneService(spec))
		synctest.Wait()
		m.Apply(nil)
		if _, ok := m.Status("db"); ok {
			t.Error("a removed service has a status")
		}
		m.Apply(oneService(spec))
		advance(time.Minute)
		started := pm.started("workload")
		if len(started) != 2 || started[1].started.Sub(started[0].started) != spec.StopGrace {
			t.Fatalf("%d started, want the second once the first was killed, after stop_grace", len(started))
		}
		if !m.Ready("db") {
			t.Error("the service is not ready again")
		}
	})
}

func TestServiceExitAfterAStableRunStartsTheCountAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, pm := pretendServices(t)
		m.Apply(oneService(pretendService(t, "db", nil)))
		for i, c := range []struct {
			up       time.Duration
			failures int
		}{{time.Second, 1}, {time.Second, 2}, {stableAfter, 1}} {
			advance(c.up)
			pm.started("workload")[i].crash("3")
			synctest.Wait()
			if st := serviceStatus(t, m, "db"); st.Failures != c.failures || st.Restarts != i {
				t.Fatalf("crash %d: %+v, want %d failures", i+1, st, c.failures)
			}
			advance(time.Second)
		}
	})
}

// A data dir left by another account (the service's user changed, or a daemon that was
// not root made it) would fail the service in obscure ways: the start says whose it is and
// what to do.
func TestDataDirOfAnotherAccountIsReportedWithTheFix(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, _ := pretendServices(t)
		spec := pretendService(t, "db", nil)
		if err := os.MkdirAll(spec.DataDir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(spec.DataDir, 12345, 12345); err != nil {
			t.Fatal(err)
		}
		m.Apply(oneService(spec))
		synctest.Wait()
		st := serviceStatus(t, m, "db")
		if st.State != "failing" || !strings.Contains(st.LastError, "belongs to uid 12345, but the service runs as uid") || !strings.Contains(st.LastError, "chown -R") {
			t.Errorf("status %+v", st)
		}
	})
}

// A service's account passes through the state dir to its data dir, and sees nothing
// else of it; the marker of an init in progress is the daemon's.
func TestServiceOfItsOwnAccountPassesThroughTheStateDirOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, pm := pretendServices(t)
		spec := pretendService(t, "db", nil)
		spec.Init = []string{"exit", "0", "1s"}
		state := filepath.Dir(filepath.Dir(spec.DataDir))
		if err := os.Chmod(state, 0o700); err != nil { // as the daemon makes it
			t.Fatal(err)
		}
		m.Apply(oneService(spec))
		synctest.Wait()
		if _, _, mode := owner(t, initMarker(spec)); mode != 0o600 {
			t.Errorf("init marker %v", mode)
		}
		advance(time.Second + readyPoll)
		if !m.Ready("db") {
			t.Fatalf("status %+v", serviceStatus(t, m, "db"))
		}
		id := uint32(pm.started("workload")[0].l.creds.uid)
		for _, c := range []struct {
			path     string
			uid, gid uint32
			mode     os.FileMode
		}{
			{state, 0, 0, os.ModeDir | 0o711},
			{filepath.Dir(spec.DataDir), 0, 0, os.ModeDir | 0o711},
			{spec.DataDir, id, id, os.ModeDir | 0o700},
		} {
			if uid, gid, mode := owner(t, c.path); uid != c.uid || gid != c.gid || mode != c.mode {
				t.Errorf("%s: %d:%d %v, want %d:%d %v", c.path, uid, gid, mode, c.uid, c.gid, c.mode)
			}
		}
		if _, err := os.Lstat(initMarker(spec)); !os.IsNotExist(err) {
			t.Errorf("init marker after init: %v", err)
		}
	})
}
