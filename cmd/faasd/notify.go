package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"faasd/catalog"
	"faasd/supervisor"
	"faasd/systemd"
)

// Bounds of the wait before READY=1: how often the functions' first replicas are
// looked at, and how long at most (within the unit's TimeoutStartSec). A function whose
// first replica fails counts as started: one broken function must not fail the unit.
const (
	startedPoll  = 100 * time.Millisecond
	startedLimit = 4 * time.Minute
	statusEvery  = 5 * time.Second
)

// notes tells systemd about the daemon's life through package systemd: READY=1 once the
// gateway listens and every declared function has started, RELOADING=1 … READY=1 around
// a reload, STOPPING=1, STATUS= with counts, and watchdog pings while /healthz answers.
// Without systemd it does nothing.
type notes struct {
	*systemd.Notifier
	sup  *supervisor.Supervisor
	svcs *supervisor.Services
	cat  *catalog.Catalog
	log  *slog.Logger
	// ready is set once READY=1 went out: a reload before that is part of the start,
	// which READY=1 ends.
	ready atomic.Bool
}

// notifyServing starts telling systemd, once the gateway at addr serves, until ctx ends,
// which is when the daemon begins to stop.
func notifyServing(ctx context.Context, log *slog.Logger, sup *supervisor.Supervisor, svcs *supervisor.Services, cat *catalog.Catalog, addr string) *notes {
	n := &notes{Notifier: systemd.NewNotifier(log), sup: sup, svcs: svcs, cat: cat, log: log}
	if !n.Enabled() {
		return n
	}
	go func() {
		defer n.Stopping()
		n.waitStarted(ctx)
		if ctx.Err() != nil {
			return
		}
		n.Ready(n.status())
		n.ready.Store(true)
		go n.Watchdog(ctx, func(ctx context.Context) error { return healthz(ctx, addr) })
		t := time.NewTicker(statusEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				n.Status(n.status())
			}
		}
	}()
	return n
}

// waitStarted returns once every function has a ready replica, wants none, or has
// failed to start one.
func (n *notes) waitStarted(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, startedLimit)
	defer cancel()
	t := time.NewTicker(startedPoll)
	defer t.Stop()
	for {
		pending := 0
		for _, fn := range n.cat.List() {
			st, ok := n.sup.Status(fn.Spec.Name)
			if !ok || (st.Ready == 0 && st.Desired > 0 && st.Failures == 0) {
				pending++
			}
		}
		if pending == 0 {
			return
		}
		n.Status(fmt.Sprintf("starting: %d functions not ready yet", pending))
		select {
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				n.log.Warn("telling systemd the daemon is ready, though functions still start", "functions", pending)
			}
			return
		case <-t.C:
		}
	}
}

// reloading and reloaded bracket a reload.
func (n *notes) reloading() {
	if n.ready.Load() {
		n.Reloading()
	}
}

func (n *notes) reloaded() {
	if n.ready.Load() {
		n.Ready(n.status())
	}
}

// status is the line `systemctl status faasd` shows.
func (n *notes) status() string {
	fns := n.sup.Statuses()
	ready, failing := 0, 0
	for _, st := range fns {
		ready += st.Ready
		if st.State == "failing" {
			failing++
		}
	}
	svcs := n.svcs.Statuses()
	svcReady := 0
	for _, st := range svcs {
		if st.State == "ready" {
			svcReady++
		}
	}
	s := fmt.Sprintf("serving %d functions, %d replicas ready", len(fns), ready)
	if failing > 0 {
		s += fmt.Sprintf(", %d functions failing", failing)
	}
	if len(svcs) > 0 {
		s += fmt.Sprintf("; %d of %d services ready", svcReady, len(svcs))
	}
	return s
}

// healthz asks the gateway whether it serves, through its own listener.
func healthz(ctx context.Context, addr string) error {
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/healthz: %s", resp.Status)
	}
	return nil
}
