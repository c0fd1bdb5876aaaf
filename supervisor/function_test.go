package supervisor

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"faasd/config"
)

// The rules of a replica's life, on the pretend machine (pretend_test.go): every time is
// exact, since the bubble's clock only moves when everything waits for it.

func one(f *config.Function) map[string]*config.Function {
	return map[string]*config.Function{f.Name: f}
}

func status(t *testing.T, s *Supervisor, name string) Status {
	t.Helper()
	return mustState(t, s.Status, name)
}

// mustState returns the state of a function or service.
func mustState[S any](t *testing.T, get func(string) (S, bool), name string) S {
	t.Helper()
	st, ok := get(name)
	if !ok {
		t.Fatalf("no status for %s", name)
	}
	return st
}

func endpoints(t *testing.T, s *Supervisor, name string) []string {
	t.Helper()
	r, ok := s.Route(name)
	if !ok {
		t.Fatalf("no route for %s", name)
	}
	eps, _ := r.Endpoints()
	var out []string
	for _, ep := range eps {
		out = append(out, ep.Replica)
	}
	return out
}

func signals(sigs ...any) []signalAt {
	var out []signalAt
	for i := 0; i < len(sigs); i += 2 {
		out = append(out, signalAt{sig: sigs[i].(syscall.Signal), at: sigs[i+1].(time.Duration)})
	}
	return out
}

func TestCrashingReplicaRestartsAfterPausesDoublingFrom100msTo30s(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, m := pretendSupervisor(t)
		s.Apply(one(pretendFunction(t, "crash", map[string]string{"EXIT_AT_START": "1"})))
		advance(2 * time.Minute)
		var want []time.Duration
		for d := 100 * time.Millisecond; len(want) < 11; d = min(2*d, 30*time.Second) {
			want = append(want, d)
		}
		if got := gaps(m.started("workload")); len(got) < len(want) || !slices.Equal(got[:len(want)], want) {
			t.Fatalf("pauses between starts %v, want %v first", got, want)
		}
		st := status(t, s, "crash")
		if st.State != "failing" || st.Failures < 11 || st.LastError != "process exited: exit status 1: exiting at start as asked" || !st.RetryAt.After(time.Now()) {
			t.Errorf("status %+v", st)
		}
		// What the failed replicas said is kept.
		lines, _, _ := mustLogs(t, s, "crash").Read(0)
		if len(lines) == 0 || lines[0].Text != "exiting at start as asked" || lines[0].Stream != "stderr" || lines[0].Replica != "1" {
			t.Errorf("logs %+v", lines)
		}
	})
}

func TestReplicaKilledForMemoryIsReportedCountedAndRestarted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, m := pretendSupervisor(t)
		f := pretendFunction(t, "hog", nil)
		var err error
		if f.Limits.Memory, err = config.ParseMemory("64Mi"); err != nil {
			t.Fatal(err)
		}
		s.Apply(one(f))
		advance(time.Second)
		if l := m.started("workload")[0].l; l.limits != f.Limits || l.name.String() != "functions/hog/1" {
			t.Fatalf("launched as %s with limits %+v, want functions/hog/1 with %+v", l.name, l.limits, f.Limits)
		}
		m.started("workload")[0].outOfMemory()
		synctest.Wait()
		st := status(t, s, "hog")
		if st.LastError != "out of memory (limit 64Mi)" || st.OOMKills != 1 || st.Failures != 1 {
			t.Errorf("status %+v", st)
		}
		// Restarted after the usual pause.
		advance(100 * time.Millisecond)
		if n := len(m.started("workload")); n != 2 {
			t.Fatalf("%d programs started, want a replacement", n)
		}
		// A SIGKILL from someone else (kill -9) is no OOM kill.
		pretendGroup{m.started("workload")[1]}.signal(syscall.SIGKILL)
		advance(time.Second)
		if st := status(t, s, "hog"); st.OOMKills != 1 || st.LastError != "process exited: signal: killed" {
			t.Errorf("after kill -9: status %+v, want 1 OOM kill and the signal as the last error", st)
		}
	})
}

func TestBackoffStartsAgainAfterTenSecondsOfHealth(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, m := pretendSupervisor(t)
		s.Apply(one(pretendFunction(t, "fn", nil)))
		for i, c := range []struct {
			readyFor time.Duration
			failures int
			pause    time.Duration
		}{
			{5 * time.Second, 1, 100 * time.Millisecond},
			{5 * time.Second, 2, 200 * time.Millisecond},
			{10 * time.Second, 1, 100 * time.Millisecond}, // stable: the count starts again
			{9 * time.Second, 2, 200 * time.Millisecond},
		} {
			advance(c.readyFor)
			crashed := time.Now()
			m.started("workload")[i].crash("3")
			synctest.Wait()
			if st := status(t, s, "fn"); st.Failures != c.failures || st.RetryAt != crashed.Add(c.pause) {
				t.Fatalf("crash %d after %s ready: failures %d, retry in %s; want %d, %s",
					i+1, c.readyFor, st.Failures, st.RetryAt.Sub(crashed), c.failures, c.pause)
			}
			advance(c.pause)
			if n := len(m.started("workload")); n != i+2 {
				t.Fatalf("%d programs started %s after crash %d, want %d", n, c.pause, i+1, i+2)
			}
		}
		if st := status(t, s, "fn"); st.State != "ready" || st.LastError != "process exited: exit status 3" {
			t.Errorf("a replaced replica: status %+v", st)
		}
	})
}

func TestReplicaIsRoutedOnceItsLockFileExistsAndItsPortAccepts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, _ := pretendSupervisor(t)
		s.Apply(one(pretendFunction(t, "fn", map[string]string{"READY_DELAY": "3s"})))
		advance(3*time.Second - time.Millisecond)
		if eps, st := endpoints(t, s, "fn"), status(t, s, "fn"); len(eps) != 0 || st.State != "starting" || st.Starting != 1 {
			t.Fatalf("before the lock file: endpoints %v, status %+v", eps, st)
		}
		advance(time.Millisecond)
		if eps, st := endpoints(t, s, "fn"), status(t, s, "fn"); len(eps) != 1 || st.State != "ready" || st.Ready != 1 {
			t.Fatalf("with the lock file: endpoints %v, status %+v", eps, st)
		}
	})
}

func TestReplicaNotReadyInTimeIsKilledAndRetried(t *testing.T) {
	for _, c := range []struct {
		name, env, err string
	}{
		{"no lock file", "NO_LOCK", "not ready before readiness_timeout"},
		{"lock file but no port", "NO_LISTEN", "not ready before readiness_timeout: lock file written but the port does not accept connections"},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s, m := pretendSupervisor(t)
				f := pretendFunction(t, "mute", map[string]string{c.env: "1"})
				f.ReadinessTimeout = 2 * time.Second
				s.Apply(one(f))
				advance(2100 * time.Millisecond)
				started := m.started("workload")
				if got, want := started[0].signalsSeen(), signals(syscall.SIGKILL, 2*time.Second); !slices.Equal(got, want) {
					t.Errorf("signals %v, want %v", got, want)
				}
				if len(started) != 2 || started[1].started.Sub(started[0].started) != 2100*time.Millisecond {
					t.Errorf("%d started, want a second one 100ms after the kill", len(started))
				}
				if st := status(t, s, "mute"); st.Failures != 1 || st.LastError != c.err {
					t.Errorf("status %+v, want the error %q", st, c.err)
				}
			})
		})
	}
}

func TestLeavingReplicaDrainsThenStopsWithGrace(t *testing.T) {
	never := time.Duration(-1)
	for _, c := range []struct {
		name    string
		env     map[string]string
		release time.Duration // when the request in flight ends; 0: none in flight
		want    []signalAt    // after the replica was told to leave
	}{
		{"idle: SIGTERM at once", nil, 0, signals(syscall.SIGTERM, time.Duration(0))},
		{"SIGTERM once the request in flight is done", nil, 5 * time.Second, signals(syscall.SIGTERM, 5*time.Second)},
		{"SIGTERM at drain_timeout with a request still in flight", nil, never, signals(syscall.SIGTERM, 20*time.Second)},
		{"SIGKILL stop_grace after an ignored SIGTERM", map[string]string{"IGNORE_TERM": "1"}, 0,
			signals(syscall.SIGTERM, time.Duration(0), syscall.SIGKILL, 5*time.Second)},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s, m := pretendSupervisor(t)
				s.Apply(one(pretendFunction(t, "fn", c.env)))
				synctest.Wait()
				route, _ := s.Route("fn")
				eps, _ := route.Endpoints()
				if c.release != 0 && !eps[0].Acquire() {
					t.Fatal("a ready replica refused a request")
				}
				if err := s.Scale("fn", 0); err != nil {
					t.Fatal(err)
				}
				synctest.Wait()
				if got := endpoints(t, s, "fn"); len(got) != 0 || eps[0].Acquire() {
					t.Fatalf("a leaving replica is still routed (%v) or takes requests", got)
				}
				if c.release > 0 {
					advance(c.release)
					eps[0].Release()
				}
				advance(time.Minute)
				p := m.started("workload")[0]
				if got := p.signalsSeen(); !slices.Equal(got, c.want) {
					t.Errorf("signals %v, want %v", got, c.want)
				}
				if _, ended := p.lived(); !ended {
					t.Error("the program still runs")
				}
				if st := status(t, s, "fn"); st.State != "scaled to zero" || len(st.Replicas) != 0 || st.Failures != 0 {
					t.Errorf("status %+v", st)
				}
			})
		})
	}
}

func TestChangedSpecRollsOverWithTheOldReplicaServingUntilTheNewIsReady(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, m := pretendSupervisor(t)
		s.Apply(one(pretendFunction(t, "fn", map[string]string{"VERSION": "1"})))
		synctest.Wait()
		route, _ := s.Route("fn")
		published := watchEndpoints(t, route)
		s.Apply(one(pretendFunction(t, "fn", map[string]string{"VERSION": "2", "READY_DELAY": "3s"})))
		synctest.Wait()
		started := m.started("workload")
		if len(started) != 2 || started[1].env["VERSION"] != "2" || started[1].started != started[0].started {
			t.Fatalf("the new replica did not start at once: %d started", len(started))
		}
		advance(time.Minute)
		if got, want := started[0].signalsSeen(), signals(syscall.SIGTERM, 3*time.Second); !slices.Equal(got, want) {
			t.Errorf("old replica's signals %v, want %v: when the new one is ready", got, want)
		}
		if got := fmt.Sprint(published()); got != "[[1] [2]]" {
			t.Errorf("endpoint sets published %v, want [1] then [2], never none", got)
		}
		if v := route.Spec().Env["VERSION"]; v != "2" {
			t.Errorf("route's spec is version %q", v)
		}
	})
}

// watchEndpoints records the endpoint sets a route publishes, the current one first,
// until the returned function is called; it returns them.
func watchEndpoints(t *testing.T, route *Route) func() [][]string {
	var sets [][]string
	record := func(eps []*Endpoint) {
		var ids []string
		for _, ep := range eps {
			ids = append(ids, ep.Replica)
		}
		sets = append(sets, ids)
	}
	eps, changed := route.Endpoints()
	record(eps)
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-changed:
			case <-quit:
				return
			}
			eps, changed = route.Endpoints()
			record(eps)
		}
	}()
	var once sync.Once
	stop := func() [][]string {
		once.Do(func() { close(quit); <-done })
		return sets
	}
	t.Cleanup(func() { stop() })
	return stop
}

func TestBrokenNewSpecLeavesTheOldReplicaServing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, m := pretendSupervisor(t)
		s.Apply(one(pretendFunction(t, "fn", map[string]string{"VERSION": "1"})))
		synctest.Wait()
		s.Apply(one(pretendFunction(t, "fn", map[string]string{"VERSION": "2", "EXIT_AT_START": "1"})))
		advance(time.Minute)
		if sigs := m.started("workload")[0].signalsSeen(); len(sigs) != 0 {
			t.Errorf("the old replica got %v", sigs)
		}
		if eps, st := endpoints(t, s, "fn"), status(t, s, "fn"); !slices.Equal(eps, []string{"1"}) || st.Failures < 5 {
			t.Errorf("endpoints %v, status %+v", eps, st)
		}
	})
}

func TestUnhealthyReplicaIsReplacedAndServesUntilTheReplacementIsReady(t *testing.T) {
	for _, c := range []struct {
		name     string
		fail     func(p *program)
		replaced time.Duration // when the replacement starts, after the failure
	}{
		{"lock file removed", (*program).unlock, 0},
		// Probes every second from the moment it was ready; two in a row must fail.
		{"port dead on two probes", (*program).deafen, 1500 * time.Millisecond},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s, m := pretendSupervisor(t)
				s.Apply(one(pretendFunction(t, "fn", map[string]string{"READY_DELAY": "2s"})))
				advance(2500 * time.Millisecond)
				old := m.started("workload")[0]
				c.fail(old)
				failed := time.Now()
				advance(c.replaced)
				started := m.started("workload")
				if len(started) != 2 || started[1].started != failed.Add(c.replaced) {
					t.Fatalf("%d started, want a replacement %s after the failure", len(started), c.replaced)
				}
				if st := status(t, s, "fn"); st.Replicas[0].State != "unhealthy" || st.Failures != 0 {
					t.Errorf("status %+v", st)
				}
				advance(time.Second)
				if eps := endpoints(t, s, "fn"); !slices.Equal(eps, []string{"1"}) {
					t.Errorf("while the replacement starts, endpoints %v, want the old one", eps)
				}
				if len(old.signalsSeen()) != 0 {
					t.Errorf("the old replica got %v before its replacement was ready", old.signalsSeen())
				}
				advance(time.Second)
				if eps := endpoints(t, s, "fn"); !slices.Equal(eps, []string{"2"}) {
					t.Errorf("once the replacement is ready, endpoints %v", eps)
				}
				if sigs := old.signalsSeen(); len(sigs) != 1 || sigs[0].sig != syscall.SIGTERM {
					t.Errorf("the old replica got %v, want SIGTERM", sigs)
				}
			})
		})
	}
}

func TestScaleDownRetiresStartingReplicasFirstThenTheNewest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, m := pretendSupervisor(t)
		s.Apply(one(pretendFunction(t, "fn", map[string]string{"READY_DELAY": "1s"})))
		advance(time.Second)
		if err := s.Scale("fn", 3); err != nil {
			t.Fatal(err)
		}
		advance(2 * time.Second) // 1, 2, 3 ready
		if err := s.Scale("fn", 4); err != nil {
			t.Fatal(err)
		}
		advance(500 * time.Millisecond) // 4 starting
		if err := s.Scale("fn", 2); err != nil {
			t.Fatal(err)
		}
		advance(time.Minute)
		var stopped []string
		for _, p := range m.started("workload") {
			if len(p.signalsSeen()) > 0 {
				stopped = append(stopped, p.replica())
			}
		}
		if slices.Sort(stopped); !slices.Equal(stopped, []string{"3", "4"}) {
			t.Errorf("stopped replicas %v, want 4 (starting), then 3 (the newest)", stopped)
		}
		if eps := endpoints(t, s, "fn"); !slices.Equal(eps, []string{"1", "2"}) {
			t.Errorf("endpoints %v", eps)
		}
	})
}

func TestScaledToZeroWakesOnARequest(t *testing.T) {
	for _, c := range []struct {
		min  int
		wake int
	}{{0, 1}, {2, 2}} {
		t.Run(fmt.Sprintf("min %d", c.min), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s, m := pretendSupervisor(t)
				f := pretendFunction(t, "fn", nil)
				f.Labels = map[string]string{config.LabelScaleMin: strconv.Itoa(c.min), config.LabelScaleZero: "true"}
				if err := f.Validate(config.DefaultScalePolicy); err != nil {
					t.Fatal(err)
				}
				s.Apply(one(f))
				synctest.Wait()
				if err := s.Scale("fn", 0); err != nil {
					t.Fatal(err)
				}
				advance(time.Second)
				if st := status(t, s, "fn"); st.State != "scaled to zero" || len(st.Replicas) != 0 {
					t.Fatalf("status %+v", st)
				}
				route, _ := s.Route("fn")
				route.Wake()
				synctest.Wait()
				if st := status(t, s, "fn"); st.Desired != c.wake || st.Ready != c.wake || st.State != "ready" {
					t.Errorf("after a wake-up: status %+v, want %d ready", st, c.wake)
				}
				if n := len(m.started("workload")); n != c.min+c.wake {
					t.Errorf("%d programs started", n)
				}
			})
		})
	}
}

func TestChangedSpecKeepsAFunctionAtZeroAsleep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, m := pretendSupervisor(t)
		s.Apply(one(pretendFunction(t, "fn", nil)))
		synctest.Wait()
		s.Scale("fn", 0)
		s.Apply(one(pretendFunction(t, "fn", map[string]string{"VERSION": "2"})))
		advance(time.Minute)
		if st, n := status(t, s, "fn"), len(m.started("workload")); st.Desired != 0 || n != 1 {
			t.Errorf("status %+v, %d started", st, n)
		}
	})
}

func TestRemovedFunctionStopsAndKeepsItsLogs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, m := pretendSupervisor(t)
		s.Apply(one(pretendFunction(t, "fn", nil)))
		synctest.Wait()
		route, _ := s.Route("fn")
		s.Apply(nil)
		synctest.Wait()
		if !route.Gone() {
			t.Error("requests held for a removed function are not told to give up")
		}
		if _, ok := s.Status("fn"); ok {
			t.Error("a removed function has a status")
		}
		if err := s.Scale("fn", 1); !errors.Is(err, ErrNotFound) {
			t.Errorf("scaling a removed function: %v", err)
		}
		if sigs := m.started("workload")[0].signalsSeen(); len(sigs) != 1 || sigs[0].sig != syscall.SIGTERM {
			t.Errorf("signals %v", sigs)
		}
		lines, _, _ := mustLogs(t, s, "fn").Read(0)
		if len(lines) != 1 || !strings.HasPrefix(lines[0].Text, "ready on port") {
			t.Errorf("logs of the removed function: %+v", lines)
		}
	})
}

func TestStopKillsWhatIsLeftWhenItsTimeRunsOut(t *testing.T) {
	for _, removed := range []bool{false, true} {
		t.Run(fmt.Sprintf("removed before the stop: %v", removed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s, m := pretendSupervisor(t)
				f := pretendFunction(t, "fn", map[string]string{"IGNORE_TERM": "1"})
				f.StopGrace = time.Hour
				s.Apply(one(f))
				synctest.Wait()
				if removed {
					s.Apply(nil)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				defer cancel()
				if err := s.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("Stop = %v", err)
				}
				want := signals(syscall.SIGTERM, time.Duration(0), syscall.SIGKILL, 3*time.Second)
				if got := m.started("workload")[0].signalsSeen(); !slices.Equal(got, want) {
					t.Errorf("signals %v, want %v", got, want)
				}
			})
		})
	}
}

func TestReplicaThatCannotStartBacksOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, _ := pretendSupervisor(t)
		f := pretendFunction(t, "fn", nil)
		f.Command = []string{"missing"}
		s.Apply(one(f))
		advance(350 * time.Millisecond)
		st := status(t, s, "fn")
		if st.Failures != 3 || !strings.HasPrefix(st.LastError, "start fn: missing:") || st.State != "failing" {
			t.Errorf("status %+v", st)
		}
	})
}

func TestScaleRejectsANegativeCountAndUnknownFunctions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, _ := pretendSupervisor(t)
		s.Apply(one(pretendFunction(t, "fn", nil)))
		if err := s.Scale("fn", -1); err == nil {
			t.Error("scaled to -1")
		}
		if err := s.Scale("nope", 1); !errors.Is(err, ErrNotFound) {
			t.Errorf("scaling an unknown function: %v", err)
		}
	})
}

func TestReplicaEnvironment(t *testing.T) {
	t.Setenv("LANG", "C.UTF-8")
	t.Setenv("LC_ALL", "C")
	t.Setenv("TZ", "UTC")
	t.Setenv("DAEMON_SECRET", "must not leak")
	for _, c := range []struct {
		name string
		spec func(*config.Function)
		iso  isolation
		want []string // in this order, with nothing else but USER and LOGNAME
		argv []string
	}{
		{"the user's env cannot move the port", func(f *config.Function) {
			f.Env = map[string]string{"HOME": "/home/fn", "PORT": "1", "A": "b"}
		}, isolateMountNS, []string{"HOME=/tmp", "HOSTNAME=fn", "LANG=C.UTF-8", "LC_ALL=C", "TZ=UTC", "A=b", "HOME=/home/fn", "PORT=1", "PORT=%d", "http_port=%d"}, []string{"workload"}},
		{"classic mode runs the watchdog", func(f *config.Function) {
			f.Command, f.Fprocess = nil, "wc -l"
		}, isolateMountNS, []string{"HOME=/tmp", "HOSTNAME=fn", "LANG=C.UTF-8", "LC_ALL=C", "TZ=UTC", "fprocess=wc -l", "PORT=%d", "http_port=%d"}, []string{"/faasd", "watchdog"}},
		{"without namespaces TMPDIR and HOME are the private dir", nil, isolateTmpdir,
			[]string{"HOME=/tmp", "HOSTNAME=fn", "LANG=C.UTF-8", "LC_ALL=C", "TZ=UTC", "TMPDIR=%t", "HOME=%t", "PORT=%d", "http_port=%d"}, []string{"workload"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s, m := pretendSupervisor(t)
				s.iso, s.exe = c.iso, "/faasd"
				f := pretendFunction(t, "fn", nil)
				if c.spec != nil {
					c.spec(f)
				}
				s.Apply(one(f))
				synctest.Wait()
				if len(m.launches) == 0 {
					t.Fatal("nothing started")
				}
				l := m.launches[0]
				port := envOf(l)["PORT"]
				tmp := filepath.Join(s.runDir, "fn", "1", "tmp")
				var got []string
				for _, kv := range l.env[1:] { // PATH first
					if !strings.HasPrefix(kv, "USER=") && !strings.HasPrefix(kv, "LOGNAME=") {
						got = append(got, kv)
					}
				}
				var want []string
				for _, kv := range c.want {
					want = append(want, strings.NewReplacer("%d", port, "%t", tmp).Replace(kv))
				}
				if !strings.HasPrefix(l.env[0], "PATH=") || !slices.Equal(got, want) {
					t.Errorf("env %q\nwant PATH, then %q", l.env, want)
				}
				if !slices.Equal(l.argv, c.argv) {
					t.Errorf("argv %q, want %q", l.argv, c.argv)
				}
				if (l.tmp == tmp) != (c.iso != isolateTmpdir) {
					t.Errorf("private /tmp %q with isolation %s", l.tmp, c.iso)
				}
			})
		})
	}
}

// A ready replica whose port comes to be another process's (it closed its listener and
// another program bound the port) is killed at the next health probe, and so out of
// routing, rather than marked unhealthy and served until replaced.
func TestReplicaWhosePortChangesHandsIsKilledAtTheNextProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, m := pretendSupervisor(t)
		s.Apply(one(pretendFunction(t, "fn", nil)))
		synctest.Wait()
		old := m.started("workload")[0]
		old.deafen()
		m.mu.Lock()
		m.ports["127.0.0.1:"+old.env["PORT"]] = &program{pid: 4242}
		m.mu.Unlock()
		advance(time.Second)
		if sigs := old.signalsSeen(); len(sigs) != 1 || sigs[0].sig != syscall.SIGKILL {
			t.Errorf("the replica got %v, want SIGKILL", sigs)
		}
		st := status(t, s, "fn")
		if st.Failures != 1 || !strings.Contains(st.LastError, "is held by pid 4242, outside the replica") {
			t.Errorf("status %+v", st)
		}
		if eps := endpoints(t, s, "fn"); slices.Contains(eps, "1") {
			t.Errorf("endpoints %v still route to the replica", eps)
		}
	})
}
