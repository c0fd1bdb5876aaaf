package proxy

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"faasd/supervisor"
)

var (
	errGone      = errors.New("function was removed")
	errTooMany   = errors.New("too many requests waiting for this function to become ready")
	errWakeLimit = errors.New("no replica became ready in time")
)

// failingError answers a call to a function that has no ready replica while its replicas
// keep failing: holding the call would only wait out the hold timeout.
type failingError struct{ f *supervisor.Failing }

func (e *failingError) Error() string {
	next := "a replica is starting now"
	if wait := time.Until(e.f.RetryAt); wait > 0 {
		next = "the next replica starts in " + wait.Round(time.Millisecond).String()
	}
	return fmt.Sprintf("failing, no replica is ready: %s (%d failures in a row over %s; %s)",
		e.f.LastError, e.f.Failures, time.Since(e.f.Since).Round(time.Millisecond), next)
}

// retryAfter is the Retry-After of the answer: whole seconds until the next replica
// starts, at least 1.
func (e *failingError) retryAfter() string {
	return strconv.FormatFloat(max(1, math.Ceil(time.Until(e.f.RetryAt).Seconds())), 'f', 0, 64)
}

// acquire returns a ready endpoint of route with the request counted in flight on it,
// holding the request while the function has none: it wakes a function at zero and waits
// for the supervisor to publish a ready replica (a channel closes; nothing polls). The
// wait is bounded by the hold timeout, the request's context, the function's deadline
// (unless zero) and a cap on held requests, and ends at once with a *failingError when
// the function is failing or turns failing while it waits. A function with a ready
// replica costs no allocation here: the context and timers exist only while a request
// is held.
//
// A client whose context needs a watch to end when it leaves (client, if not nil) gets
// one once the request is held.
func (p *Proxy) acquire(ctx context.Context, deadline time.Time, route *supervisor.Route, c *counters, tried []*supervisor.Endpoint, client clientWatcher) (*supervisor.Endpoint, time.Duration, error) {
	var (
		heldSince time.Time
		timeout   *time.Timer
	)
	defer func() {
		if timeout != nil {
			timeout.Stop()
			c.held.Add(-1)
		}
	}()
	for {
		eps, changed := route.Endpoints()
		for {
			ep := p.balancer.pick(eps, tried)
			if ep == nil {
				break
			}
			if ep.Acquire() {
				var waited time.Duration
				if timeout != nil {
					waited = time.Since(heldSince)
				}
				return ep, waited, nil
			}
			// Leaving: the supervisor is about to publish a set without it.
			tried = append(tried, ep)
		}
		if route.Gone() {
			return nil, 0, errGone
		}
		if f := route.Failing(); f != nil {
			return nil, 0, &failingError{f}
		}
		if timeout == nil {
			if n := c.held.Add(1); p.maxHeld > 0 && n > int64(p.maxHeld) {
				c.held.Add(-1)
				return nil, 0, errTooMany
			}
			heldSince = time.Now()
			timeout = time.NewTimer(p.holdTimeout)
			if client != nil {
				client.watchClient()
			}
			if !deadline.IsZero() {
				var cancel context.CancelFunc
				ctx, cancel = context.WithDeadline(ctx, deadline)
				defer cancel()
			}
		}
		route.Wake()
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		case <-timeout.C:
			return nil, 0, fmt.Errorf("%w (waited %s)", errWakeLimit, p.holdTimeout)
		}
	}
}
