package supervisor

import (
	"cmp"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"faasd/config"
)

type eventKind int

const (
	evStarted eventKind = iota
	evReady
	evUnhealthy
	evExited
	evScale
	evUpdate
	evStop
	evRetry
)

type event struct {
	kind  eventKind
	r     *replica
	err   error
	n     int
	spec  *config.Function
	reply chan error
}

// Restart backoff: a replica that dies before it has been ready for stableAfter counts as
// a fast failure; each one doubles the pause before the next start, up to maxBackoff.
const (
	baseBackoff = 100 * time.Millisecond
	maxBackoff  = 30 * time.Second
	stableAfter = 10 * time.Second
)

// function is the controller of one function: a single goroutine that owns its replicas
// and reconciles them with the desired count after every event, so no lock guards them.
type function struct {
	s      *Supervisor
	route  *Route
	events chan event
	done   chan struct{}
	log    *slog.Logger

	spec     *config.Function
	creds    *credentials // of spec.User, looked up on first start
	gen      int
	desired  int
	replicas map[int]*replica
	stopping bool
	stopped  []chan error

	failures  int
	lastError string
	retryAt   time.Time
	retry     *time.Timer

	status atomic.Pointer[Status]
}

func newFunction(s *Supervisor, spec *config.Function, logs *Logs) *function {
	f := &function{
		s:        s,
		route:    newRoute(spec, logs),
		events:   make(chan event, 64),
		done:     make(chan struct{}),
		log:      s.log.With("function", spec.Name),
		spec:     spec,
		desired:  spec.Scale.Min,
		replicas: map[int]*replica{},
	}
	f.publishStatus()
	go f.loop()
	return f
}

func (f *function) loop() {
	defer close(f.done)
	f.reconcile()
	for {
		select {
		case ev := <-f.events:
			f.handle(ev)
		case <-f.route.wake:
			if f.desired == 0 && !f.stopping {
				f.desired = max(1, f.spec.Scale.Min)
				f.log.Info("waking from zero", "replicas", f.desired)
			}
		}
		f.reconcile()
		f.publishStatus()
		if f.stopping && len(f.replicas) == 0 {
			for _, ch := range f.stopped {
				ch <- nil
			}
			return
		}
	}
}

func (f *function) handle(ev event) {
	r := ev.r
	switch ev.kind {
	case evStarted:
		r.pid = ev.n
	case evReady:
		if r.state == starting {
			r.state = ready
			r.readyAt = time.Now()
			f.log.Info("replica ready", "replica", r.id, "port", r.port, "after", time.Since(r.started).Round(time.Microsecond))
		}
	case evUnhealthy:
		if r.state == ready {
			r.state = unhealthy
			f.log.Warn("replica unhealthy: replacing it", "replica", r.id, "reason", ev.err)
		}
	case evExited:
		delete(f.replicas, r.id)
		// A replica that died without leaving still ends its endpoint's life, so that
		// whoever holds resources for it lets them go.
		r.endpoint.leave()
		if r.state != leaving {
			f.failed(r, ev.err)
		} else {
			f.log.Info("replica stopped", "replica", r.id)
		}
	case evScale:
		f.desired = ev.n
		f.retryAt = time.Time{} // a deliberate scale deserves an immediate attempt
		ev.reply <- nil
	case evUpdate:
		f.spec = ev.spec
		f.creds = nil
		f.gen++
		f.desired = clampDesired(f.desired, ev.spec.Scale)
		f.failures, f.retryAt = 0, time.Time{}
		f.route.spec.Store(ev.spec)
		f.log.Info("spec changed: rolling replicas over", "generation", f.gen)
	case evStop:
		if !f.stopping {
			f.route.gone.Store(true)
		}
		f.stopping = true
		f.desired = 0
		f.stopped = append(f.stopped, ev.reply)
	case evRetry:
	}
}

// clampDesired keeps a running count inside a new policy, but leaves a function at zero
// asleep.
func clampDesired(n int, p config.ScalePolicy) int {
	if n == 0 {
		return 0
	}
	return min(max(n, p.Min), p.Max)
}

// failed records an unexpected end of a replica and schedules a restart with backoff.
func (f *function) failed(r *replica, err error) {
	if err == nil {
		err = errors.New("exited")
	}
	if !r.readyAt.IsZero() && time.Since(r.readyAt) >= stableAfter {
		f.failures = 1
	} else {
		f.failures++
	}
	f.lastError = err.Error()
	delay := min(baseBackoff<<min(f.failures-1, 20), maxBackoff)
	f.retryAt = time.Now().Add(delay)
	f.log.Warn("replica failed", "replica", r.id, "err", err, "failures", f.failures, "restart_in", delay)
}

// reconcile moves the replicas towards the desired count and the current spec.
func (f *function) reconcile() {
	var current, obsolete []*replica
	readyCurrent := 0
	for _, r := range f.replicas {
		switch {
		case r.state == leaving:
		case r.gen == f.gen && r.state != unhealthy:
			current = append(current, r)
			if r.state == ready {
				readyCurrent++
			}
		default:
			obsolete = append(obsolete, r)
		}
	}
	// Scale down: starting replicas go first (they serve nobody yet), then the newest.
	if extra := len(current) - f.desired; extra > 0 {
		slices.SortFunc(current, func(a, b *replica) int {
			if (a.state == starting) != (b.state == starting) {
				if a.state == starting {
					return -1
				}
				return 1
			}
			return cmp.Compare(b.id, a.id)
		})
		for _, r := range current[:extra] {
			if r.state == ready {
				readyCurrent--
			}
			f.retire(r)
		}
		current = current[extra:]
	}
	// Scale up, unless a failure asked for a pause.
	if missing := f.desired - len(current); missing > 0 {
		if wait := time.Until(f.retryAt); wait > 0 {
			f.scheduleRetry(wait)
		} else {
			for range missing {
				f.startReplica()
			}
		}
	}
	// Roll over: an obsolete replica keeps serving until a current one can take its place.
	keep := max(0, f.desired-readyCurrent)
	slices.SortFunc(obsolete, func(a, b *replica) int {
		// Keep ready ones over starting ones, healthy over unhealthy, newest first.
		if ra, rb := a.state == ready, b.state == ready; ra != rb {
			if ra {
				return -1
			}
			return 1
		}
		return cmp.Compare(b.id, a.id)
	})
	for i, r := range obsolete {
		if i >= keep || r.state == starting || f.stopping {
			f.retire(r)
		}
	}
	f.publishEndpoints()
}

func (f *function) scheduleRetry(wait time.Duration) {
	if f.retry != nil {
		f.retry.Stop()
	}
	f.retry = time.AfterFunc(wait, func() {
		select {
		case f.events <- event{kind: evRetry}:
		default: // a full queue will reconcile soon anyway
		}
	})
}

func (f *function) startReplica() {
	// The account is looked up once per spec, not on every (cold) start.
	if f.creds == nil {
		c, err := lookupUser(f.spec.User)
		if err != nil {
			f.failed(&replica{}, err)
			return
		}
		f.creds = &c
	}
	port, err := f.s.ports.get()
	if err != nil {
		f.failed(&replica{}, err)
		return
	}
	id := int(f.s.nextID.Add(1))
	r := &replica{
		id:      id,
		gen:     f.gen,
		spec:    f.spec,
		creds:   *f.creds,
		port:    port,
		dir:     filepath.Join(f.s.runDir, f.spec.Name, strconv.Itoa(id)),
		started: time.Now(),
		stop:    make(chan struct{}),
	}
	r.endpoint = newEndpoint(net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), r.name())
	f.replicas[r.id] = r
	go r.run(f.s, f.events, f.route.Logs)
}

// retire takes a replica out of routing and tells it to drain and stop.
func (f *function) retire(r *replica) {
	if r.state == leaving {
		return
	}
	r.state = leaving
	// Refuse new requests before the endpoint leaves the routing table, so that once a
	// caller sees the table without it, no request can still land on it.
	r.endpoint.leave()
	close(r.stop)
}

func (f *function) publishEndpoints() {
	var eps []*Endpoint
	for _, r := range f.replicas {
		if r.state == ready || r.state == unhealthy {
			eps = append(eps, r.endpoint)
		}
	}
	slices.SortFunc(eps, func(a, b *Endpoint) int { return cmp.Compare(a.Replica, b.Replica) })
	old, _ := f.route.Endpoints()
	if slices.Equal(old, eps) {
		return
	}
	f.route.publish(eps)
}
