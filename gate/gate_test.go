package gate

import (
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"faasd/config"
	"faasd/internal/testkit"
)

// runner records what the gate applies; what it was last given is what runs.
type runner struct {
	mu      sync.Mutex
	running map[string]bool
	applied chan []string // the names of every Apply, in order
}

func newRunner() *runner {
	return &runner{running: map[string]bool{}, applied: make(chan []string, 64)}
}

func (r *runner) Apply(fns map[string]*config.Function) {
	r.mu.Lock()
	r.running = map[string]bool{}
	for name := range fns {
		r.running[name] = true
	}
	r.mu.Unlock()
	r.applied <- slices.Sorted(maps.Keys(fns))
}

func (r *runner) Running(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.running[name]
}

// next returns the names of the next Apply, failing the test if none comes.
func (r *runner) next(t *testing.T) []string {
	t.Helper()
	select {
	case names := <-r.applied:
		return names
	case <-time.After(10 * time.Second):
		t.Fatal("the gate applied nothing within 10s")
		return nil
	}
}

// drain takes the applies made so far and returns the last one, and whether there was any.
func (r *runner) drain() (last []string, any bool) {
	for {
		select {
		case last = <-r.applied:
			any = true
		default:
			return last, any
		}
	}
}

// services is a set of services whose readiness the test sets.
type services struct {
	mu      sync.Mutex
	ready   map[string]bool
	changed chan struct{}
}

func newServices() *services {
	return &services{ready: map[string]bool{}, changed: make(chan struct{})}
}

func (s *services) Ready(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ready[name]
}

func (s *services) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

func (s *services) set(name string, ready bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ready[name] = ready
	close(s.changed)
	s.changed = make(chan struct{})
}

func fn(name string, deps ...string) *config.Function {
	return &config.Function{Name: name, DependsOn: deps}
}

func set(fns ...*config.Function) map[string]*config.Function {
	m := map[string]*config.Function{}
	for _, f := range fns {
		m[f.Name] = f
	}
	return m
}

func start(t *testing.T) (*Gate, *runner, *services, *testkit.SyncBuffer) {
	t.Helper()
	run, svcs, log := newRunner(), newServices(), &testkit.SyncBuffer{}
	g := New(run, svcs, slog.New(slog.NewTextHandler(log, nil)))
	t.Cleanup(g.Close)
	return g, run, svcs, log
}

func TestApplyPassesFunctionsWhoseServicesAreReady(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ready []string
		fns   map[string]*config.Function
		want  []string
	}{
		{"no services", nil, set(fn("a"), fn("b")), []string{"a", "b"}},
		{"service ready", []string{"db"}, set(fn("app", "db")), []string{"app"}},
		{"service not ready", nil, set(fn("app", "db"), fn("plain")), []string{"plain"}},
		{"one of two not ready", []string{"db"}, set(fn("app", "db", "cache")), []string{}},
		{"nothing asked", nil, set(), []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, run, svcs, _ := start(t)
			for _, s := range tc.ready {
				svcs.set(s, true)
			}
			run.drain()
			g.Apply(tc.fns)
			// Apply passes on at once, in the caller's goroutine.
			if got, _ := run.drain(); !slices.Equal(got, tc.want) {
				t.Errorf("applied %q, want %q", got, tc.want)
			}
		})
	}
}

func TestHeldFunctionStartsWhenItsServiceBecomesReady(t *testing.T) {
	g, run, svcs, log := start(t)
	g.Apply(set(fn("app", "db"), fn("plain")))
	if got, _ := run.drain(); !slices.Equal(got, []string{"plain"}) {
		t.Fatalf("applied %q, want only plain", got)
	}
	if !strings.Contains(log.String(), `msg="function waits for its services" function=app depends_on=[db]`) {
		t.Errorf("no line saying app waits:\n%s", log)
	}
	svcs.set("db", true)
	for {
		if got := run.next(t); slices.Equal(got, []string{"app", "plain"}) {
			break
		}
	}
	if n := strings.Count(log.String(), "function waits"); n != 1 {
		t.Errorf("the wait was logged %d times, want once:\n%s", n, log)
	}
}

func TestRunningFunctionIsNotStoppedWhenItsServiceRestarts(t *testing.T) {
	g, run, svcs, _ := start(t)
	svcs.set("db", true)
	g.Apply(set(fn("app", "db")))
	if got, _ := run.drain(); !slices.Equal(got, []string{"app"}) {
		t.Fatalf("applied %q, want app", got)
	}
	svcs.set("db", false) // the database restarts
	// Whatever the gate applies in answer keeps app; a reload meanwhile keeps it too.
	g.Apply(set(fn("app", "db"), fn("new", "db")))
	if got, _ := run.drain(); !slices.Equal(got, []string{"app"}) {
		t.Errorf("applied %q during the restart, want app kept and new held", got)
	}
}

func TestRemovedFunctionIsForgottenAndLoggedAgainWhenBack(t *testing.T) {
	g, run, _, log := start(t)
	g.Apply(set(fn("app", "db")))
	g.Apply(set())
	g.Apply(set(fn("app", "db")))
	if got, _ := run.drain(); len(got) != 0 {
		t.Errorf("applied %q, want nothing while db is down", got)
	}
	if n := strings.Count(log.String(), "function waits"); n != 2 {
		t.Errorf("logged the wait %d times, want twice (once per time it was asked for):\n%s", n, log)
	}
}

func TestClosedGateAppliesNothing(t *testing.T) {
	g, run, svcs, _ := start(t)
	g.Apply(set(fn("app", "db")))
	g.Close()
	run.drain()
	g.Apply(set(fn("other")))
	svcs.set("db", true) // the watch goroutine is gone: nothing reacts
	g.Close()            // a second Close returns too
	if got, any := run.drain(); any {
		t.Errorf("applied %q after Close", got)
	}
}
