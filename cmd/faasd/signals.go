package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// Bounds on a graceful stop: in-flight requests get httpDrain to finish, and together with
// the replicas (each drains, gets SIGTERM, then SIGKILL after its grace) stopLimit; the
// services, stopped last, get stopLimit of their own, since a database flushes on SIGTERM.
const (
	httpDrain = 30 * time.Second
	stopLimit = 60 * time.Second
)

// signals turns the process's signals into what serve does, in this one place: the first
// SIGTERM or SIGINT (or the end of the caller's context) stops gracefully, a second one
// cuts the stop short, and SIGHUP reloads the configuration.
type signals struct {
	stopping context.Context // ends when the daemon should stop
	forced   context.Context // ends when it should stop now
	reload   chan struct{}   // a SIGHUP, not yet acted on

	stop, force context.CancelFunc
	notified    chan os.Signal
	done        chan struct{}
	exited      chan struct{}

	budgetOnce sync.Once
	budgetCtx  context.Context
	budgetEnd  context.CancelFunc
}

func watchSignals(ctx context.Context, log *slog.Logger) *signals {
	s := &signals{
		reload:   make(chan struct{}, 1),
		notified: make(chan os.Signal, 4),
		done:     make(chan struct{}),
		exited:   make(chan struct{}),
	}
	s.stopping, s.stop = context.WithCancel(ctx)
	s.forced, s.force = context.WithCancel(context.Background())
	signal.Notify(s.notified, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	go s.loop(log)
	return s
}

func (s *signals) loop(log *slog.Logger) {
	defer close(s.exited)
	for {
		select {
		case sig := <-s.notified:
			switch {
			case sig == syscall.SIGHUP:
				select {
				case s.reload <- struct{}{}:
				default: // one reload reads the file as it is by then
				}
			case s.stopping.Err() == nil:
				log.Info("stopping", "signal", sig.String())
				s.stop()
			default:
				log.Warn("second signal: stopping now", "signal", sig.String())
				s.force()
			}
		case <-s.done:
			return
		}
	}
}

// budget is the time in-flight requests and replicas share to stop, counted from the
// first call, once stopping has begun.
func (s *signals) budget() context.Context {
	s.budgetOnce.Do(func() { s.budgetCtx, s.budgetEnd = context.WithTimeout(s.forced, stopLimit) })
	return s.budgetCtx
}

// stopWithin calls stop with ctx bounded by limit (none when 0) and logs what it reports,
// but not that it was cut short: the signal that did it was logged.
func stopWithin(ctx context.Context, limit time.Duration, what string, stop func(context.Context) error, log *slog.Logger) {
	if limit > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, limit)
		defer cancel()
	}
	if err := stop(ctx); err != nil && !errors.Is(err, context.Canceled) {
		log.Warn(what, "err", err)
	}
}

func (s *signals) close() {
	signal.Stop(s.notified)
	close(s.done)
	<-s.exited
	s.stop()
	s.force()
	if s.budgetEnd != nil {
		s.budgetEnd()
	}
}
