package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"sync"
	"syscall"

	"github.com/VictoriaMetrics/metrics"

	"faasd/config"
	"faasd/supervisor"
)

// errStoppedWhileStarting ends serve quietly: the operator asked for the stop.
var errStoppedWhileStarting = errors.New("stopped while services were starting")

// startServices starts the file's services and waits until every one is ready, so that the
// functions start against running dependencies. A service that fails to come up ends the
// daemon with its reason; a stop signal ends the wait.
func startServices(svcs *supervisor.Services, specs map[string]*config.Service, sigs <-chan os.Signal, log *slog.Logger) error {
	if len(specs) == 0 {
		return nil
	}
	log.Info("starting services", "services", slices.Sorted(maps.Keys(specs)))
	svcs.Apply(specs)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	waited := make(chan error, 1)
	go func() { waited <- svcs.WaitReady(ctx) }()
	for {
		select {
		case err := <-waited:
			if err != nil {
				stopServices(svcs, log)
			}
			return err
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				log.Info("SIGHUP while services start: the file was just read", "signal", sig.String())
				continue
			}
			log.Info("stopping", "signal", sig.String())
			cancel()
			<-waited
			stopServices(svcs, log)
			return errStoppedWhileStarting
		}
	}
}

func stopServices(svcs *supervisor.Services, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), stopLimit)
	defer cancel()
	if err := svcs.Stop(ctx); err != nil {
		log.Warn("stop services", "err", err)
	}
}

// serviceGate stands between the catalog and the supervisor: it holds a function back
// until every service in its depends_on is ready, and lets it through when they are, so
// that no replica starts against a database that is not there yet. A function that already
// runs is not stopped when one of its services restarts: it copes with a short outage as
// it would with any other, and stopping it would make the outage longer.
type serviceGate struct {
	sup  *supervisor.Supervisor
	svcs *supervisor.Services
	log  *slog.Logger

	mu     sync.Mutex
	all    map[string]*config.Function // the last set asked for
	held   map[string]bool             // logged as waiting
	closed bool
	done   chan struct{}
}

func newServiceGate(sup *supervisor.Supervisor, svcs *supervisor.Services, log *slog.Logger) *serviceGate {
	g := &serviceGate{sup: sup, svcs: svcs, log: log, held: map[string]bool{}, done: make(chan struct{})}
	go g.watch()
	return g
}

// Apply implements catalog.Target.
func (g *serviceGate) Apply(fns map[string]*config.Function) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.all = fns
	g.applyLocked()
}

func (g *serviceGate) applyLocked() {
	if g.closed || g.all == nil {
		return
	}
	run := make(map[string]*config.Function, len(g.all))
	for name, f := range g.all {
		_, running := g.sup.Status(name)
		if running || g.ready(f.DependsOn) {
			run[name] = f
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
	g.sup.Apply(run)
}

func (g *serviceGate) ready(deps []string) bool {
	for _, d := range deps {
		if !g.svcs.Ready(d) {
			return false
		}
	}
	return true
}

// watch lets held functions through as their services become ready.
func (g *serviceGate) watch() {
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

// close stops the gate before the supervisor stops: from then on nothing is applied, so
// that no function starts again while the daemon shuts down.
func (g *serviceGate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.closed {
		g.closed = true
		close(g.done)
	}
}

// writeServiceMetrics adds the state of every service to each scrape of /metrics.
func writeServiceMetrics(svcs *supervisor.Services) func(io.Writer) {
	return func(w io.Writer) {
		for _, st := range svcs.Statuses() {
			label := fmt.Sprintf(`{service=%q}`, st.Name)
			ready := uint64(0)
			if st.State == "ready" {
				ready = 1
			}
			metrics.WriteGaugeUint64(w, "faasd_service_ready"+label, ready)
			metrics.WriteGaugeUint64(w, "faasd_service_restarts"+label, uint64(st.Restarts))
			metrics.WriteGaugeUint64(w, "faasd_service_failures"+label, uint64(st.Failures))
		}
	}
}
