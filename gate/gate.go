// Package gate stands between the function catalog and the supervisor: it holds a
// function back until every service in its depends_on is ready, and lets it through when
// they are, so that no replica starts against a database that is not there yet.
//
// A function that already runs is not stopped when one of its services restarts: it copes
// with a short outage as it would with any other, and stopping it would make the outage
// longer. The gate starts and stops nothing itself.
package gate

import (
	"log/slog"
	"sync"

	"faasd/config"
)

// Runner runs the functions the gate lets through: the supervisor.
type Runner interface {
	// Apply makes the running set exactly fns.
	Apply(fns map[string]*config.Function)
	// Running reports whether the runner has the function already.
	Running(name string) bool
}

// Services tells whether services are ready, and when that may have changed.
type Services interface {
	Ready(name string) bool
	// Changed returns a channel closed at the next change of any service's state.
	Changed() <-chan struct{}
}

// Gate holds functions back until their services are ready.
type Gate struct {
	run  Runner
	svcs Services
	log  *slog.Logger

	mu     sync.Mutex
	all    map[string]*config.Function // the last set asked for; nil until the first
	held   map[string]bool             // held back, and logged as such
	closed bool
	done   chan struct{} // closed by Close
	exited chan struct{} // closed when the watch goroutine has returned
}

// New starts a gate in front of run, which lets functions through as svcs become ready
// until Close.
func New(run Runner, svcs Services, log *slog.Logger) *Gate {
	g := &Gate{
		run: run, svcs: svcs, log: log,
		held: map[string]bool{}, done: make(chan struct{}), exited: make(chan struct{}),
	}
	go g.watch()
	return g
}

// Apply asks for fns to run: those whose services are ready (or that run already) go to
// the runner now, the others when their services are ready. It implements catalog.Target.
func (g *Gate) Apply(fns map[string]*config.Function) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.all = fns
	g.applyLocked()
}

func (g *Gate) applyLocked() {
	if g.closed || g.all == nil {
		return
	}
	pass := make(map[string]*config.Function, len(g.all))
	for name, f := range g.all {
		if g.run.Running(name) || g.ready(f.DependsOn) {
			pass[name] = f
			delete(g.held, name)
			continue
		}
		if !g.held[name] {
			g.log.Info("function waits for its services", "function", name, "depends_on", f.DependsOn)
			g.held[name] = true
		}
	}
	for name := range g.held {
		if _, ok := g.all[name]; !ok {
			delete(g.held, name)
		}
	}
	g.run.Apply(pass)
}

func (g *Gate) ready(deps []string) bool {
	for _, d := range deps {
		if !g.svcs.Ready(d) {
			return false
		}
	}
	return true
}

// watch lets held functions through as their services become ready.
func (g *Gate) watch() {
	defer close(g.exited)
	for {
		// Taken before looking, so that a change while applying is not missed.
		changed := g.svcs.Changed()
		g.mu.Lock()
		g.applyLocked()
		g.mu.Unlock()
		select {
		case <-changed:
		case <-g.done:
			return
		}
	}
}

// Close stops the gate, before the runner stops: from then on nothing is applied, so that
// no function starts again while the daemon shuts down. It returns once the gate's
// goroutine has, and may be called more than once.
func (g *Gate) Close() {
	g.mu.Lock()
	if !g.closed {
		g.closed = true
		close(g.done)
	}
	g.mu.Unlock()
	<-g.exited
}
