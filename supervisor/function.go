package supervisor

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"faasd/accounts"
	"faasd/cgroup"
	"faasd/config"
)

// Status is a function's state as the API, the UI and the scaler see it.
type Status struct {
	Name      string
	Desired   int
	Ready     int
	Starting  int
	Failures  int       // fast failures in a row
	LastError string    // of the last failure
	RetryAt   time.Time // when a failed replica is started again
	State     string    // "ready", "starting", "failing", "scaled to zero", "stopping"
	Replicas  []ReplicaStatus
	OOMKills  uint64 // replicas the kernel's OOM killer ended
	Usage     *Usage // nil until measured (in cgroups only)
}

// ReplicaStatus describes one replica.
type ReplicaStatus struct {
	ID       string
	PID      int
	Port     int
	State    string
	Started  time.Time
	InFlight int64
	Usage    *Usage // nil until measured (in cgroups only)
}

// What the replicas and the API tell a function's controller.
type eventKind int

const (
	evStarted   eventKind = iota // n: the pid
	evReady                      // lock file seen and port accepting
	evUnhealthy                  // err: why
	evExited                     // err: why, nil when it was asked to leave
	evScale                      // n: the desired count; reply: the answer
	evRetry                      // a backoff pause is over
)

type event struct {
	kind  eventKind
	r     *replica
	err   error
	n     int
	reply chan error
}

// function is the controller of one function: a single goroutine that owns its replicas
// and reconciles them with the desired count after every event, so no lock guards them.
type function struct {
	c      *control[*config.Function, Status]
	s      *Supervisor
	route  *Route
	events chan event // from the replicas and Scale
	log    *slog.Logger

	spec     *config.Function
	creds    *credentials // of spec.User, looked up on first start
	gen      int          // of spec: replicas of an older one roll over
	desired  int
	replicas map[int]*replica
	stopping bool
	backoff  backoff
	retry    *time.Timer
	// failingSince is the first fast failure since a replica was last ready, the function
	// last went to zero or its spec changed; zero: not failing. The end of a stable run
	// alone does not make a function failing: its replacement starts at once.
	failingSince time.Time
	oomKills     uint64
}

func newFunction(s *Supervisor, spec *config.Function, logs *Logs) *function {
	f := &function{
		c:        newControl[*config.Function, Status](spec.Name, spec),
		s:        s,
		route:    newRoute(spec, logs),
		events:   make(chan event, 64),
		log:      s.log.With("function", spec.Name),
		spec:     spec,
		desired:  spec.Scale.Min,
		replicas: map[int]*replica{},
	}
	f.publishStatus()
	go f.loop()
	return f
}

func (f *function) ctl() *control[*config.Function, Status] { return f.c }

func (f *function) loop() {
	defer close(f.c.done)
	// Its cgroups go with it, unless it was re-added meanwhile: a function of the
	// same name is in the table again, and uses them.
	defer f.s.groups.forget(cgroup.Functions, f.c.name, func() bool {
		_, ok := f.s.fns.get(f.c.name)
		return ok
	})
	defer func() {
		if f.retry != nil {
			f.retry.Stop()
		}
	}()
	quit := f.c.quit
	for {
		f.reconcile()
		f.publishStatus()
		if f.stopping && len(f.replicas) == 0 {
			return
		}
		select {
		case ev := <-f.events:
			f.handle(ev)
		case <-f.c.kick:
			f.update(f.c.spec())
		case <-quit:
			quit = nil
			f.beginStop()
		case <-f.route.wake:
			f.wake()
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
			f.failingSince = time.Time{}
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
		if isOutOfMemory(ev.err) {
			f.oomKills++
		}
		if r.state != leaving {
			f.failed(r.id, r.readyAt, ev.err)
		} else {
			f.log.Info("replica stopped", "replica", r.id)
		}
	case evScale:
		if f.stopping {
			ev.reply <- fmt.Errorf("scale %s: %w", f.spec.Name, ErrNotFound)
			return
		}
		f.desired = ev.n
		if ev.n == 0 {
			// Asleep, it is not failing: the request that wakes it waits for a new try.
			f.failingSince = time.Time{}
		}
		f.backoff.retryNow()
		ev.reply <- nil
	case evRetry:
	}
}

// update starts rolling the replicas over to a changed spec.
func (f *function) update(spec *config.Function) {
	if spec.Equal(f.spec) {
		return
	}
	f.spec = spec
	f.creds = nil
	f.gen++
	f.desired = clampDesired(f.desired, spec.Scale)
	f.backoff.reset()
	f.failingSince = time.Time{}
	f.route.spec.Store(spec)
	f.log.Info("spec changed: rolling replicas over", "generation", f.gen)
}

// beginStop takes the function out of service: every replica drains and stops.
func (f *function) beginStop() {
	f.route.gone.Store(true)
	f.stopping = true
	f.desired = 0
}

// wake starts a function at zero on the first request.
func (f *function) wake() {
	if f.desired == 0 && !f.stopping {
		f.desired = max(1, f.spec.Scale.Min)
		f.log.Info("waking from zero", "replicas", f.desired)
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

// failed records an unexpected end of a replica (id 0: one that could not be started)
// and pauses the next start.
func (f *function) failed(id int, readyAt time.Time, err error) {
	if err == nil {
		err = errors.New("exited")
	}
	now := time.Now()
	if f.failingSince.IsZero() && !ranStable(readyAt, now) {
		f.failingSince = now
	}
	delay := f.backoff.failed(err, readyAt)
	f.log.Warn("replica failed", "replica", id, "err", err, "failures", f.backoff.failures, "restart_in", delay)
}

// reconcile moves the replicas towards the desired count and the current spec.
func (f *function) reconcile() {
	current, obsolete := f.sortReplicas()
	current = f.scaleDown(current)
	f.scaleUp(f.desired - len(current))
	f.rollOver(obsolete, countReady(current))
	f.publishRoute()
}

// sortReplicas sorts the replicas that are not leaving into current ones (of the current
// spec, healthy) and obsolete ones (of an older spec, or unhealthy), which are to be
// replaced.
func (f *function) sortReplicas() (current, obsolete []*replica) {
	for _, r := range f.replicas {
		switch {
		case r.state == leaving:
		case r.gen == f.gen && r.state != unhealthy:
			current = append(current, r)
		default:
			obsolete = append(obsolete, r)
		}
	}
	return current, obsolete
}

// scaleDown retires the current replicas beyond the desired count: starting ones first
// (they serve nobody yet), then the newest. It returns those that stay.
func (f *function) scaleDown(current []*replica) []*replica {
	extra := len(current) - f.desired
	if extra <= 0 {
		return current
	}
	slices.SortFunc(current, inStateThenNewest(starting))
	for _, r := range current[:extra] {
		f.retire(r)
	}
	return current[extra:]
}

// scaleUp starts missing replicas, unless a failure asked for a pause.
func (f *function) scaleUp(missing int) {
	if missing <= 0 {
		return
	}
	if wait := f.backoff.pause(); wait > 0 {
		f.scheduleRetry(wait)
		return
	}
	for range missing {
		f.startReplica()
	}
}

// rollOver retires obsolete replicas as current ones become ready to take their place:
// until then they keep serving. Starting ones go at once, and all of them when the
// function stops.
func (f *function) rollOver(obsolete []*replica, readyCurrent int) {
	keep := max(0, f.desired-readyCurrent)
	// Keep ready ones over starting ones, healthy over unhealthy, newest first.
	slices.SortFunc(obsolete, inStateThenNewest(ready))
	for i, r := range obsolete {
		if i >= keep || r.state == starting || f.stopping {
			f.retire(r)
		}
	}
}

// inStateThenNewest orders replicas in state first before the others, and the newest
// first among equals.
func inStateThenNewest(first replicaState) func(a, b *replica) int {
	return func(a, b *replica) int {
		if fa, fb := a.state == first, b.state == first; fa != fb {
			if fa {
				return -1
			}
			return 1
		}
		return cmp.Compare(b.id, a.id)
	}
}

func countReady(rs []*replica) int {
	n := 0
	for _, r := range rs {
		if r.state == ready {
			n++
		}
	}
	return n
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
		c, err := f.s.accounts.resolve(accounts.Function, f.spec.Name, f.spec.User)
		if err != nil {
			f.failed(0, time.Time{}, err)
			return
		}
		f.creds = &c
	}
	port, err := f.s.ports.get()
	if err != nil {
		f.failed(0, time.Time{}, err)
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

// publishRoute publishes the ready endpoints and whether the function is failing when
// either changed, so that requests held for a replica learn of both at once.
func (f *function) publishRoute() {
	var eps []*Endpoint
	for _, r := range f.replicas {
		if r.state == ready || r.state == unhealthy {
			eps = append(eps, r.endpoint)
		}
	}
	slices.SortFunc(eps, func(a, b *Endpoint) int { return cmp.Compare(a.Replica, b.Replica) })
	var failing *Failing
	if !f.failingSince.IsZero() && !f.stopping {
		failing = &Failing{Since: f.failingSince, Failures: f.backoff.failures, LastError: f.backoff.lastError, RetryAt: f.backoff.retryAt}
	}
	old := f.route.set.Load()
	if slices.Equal(old.eps, eps) && (old.failing == nil) == (failing == nil) && (failing == nil || *old.failing == *failing) {
		return
	}
	f.route.publish(eps, failing)
}

func (f *function) publishStatus() {
	st := Status{
		Name: f.spec.Name, Desired: f.desired,
		Failures: f.backoff.failures, LastError: f.backoff.lastError, RetryAt: f.backoff.retryAt,
		OOMKills: f.oomKills,
	}
	for _, r := range slices.SortedFunc(maps.Values(f.replicas), func(a, b *replica) int { return a.id - b.id }) {
		switch r.state {
		case ready:
			st.Ready++
		case starting:
			st.Starting++
		}
		rs := ReplicaStatus{ID: r.name(), PID: r.pid, Port: r.port, State: r.state.String(), Started: r.started}
		if r.endpoint != nil {
			rs.InFlight = r.endpoint.InFlight()
		}
		st.Replicas = append(st.Replicas, rs)
	}
	switch {
	case f.stopping:
		st.State = "stopping"
	case f.desired == 0:
		st.State = "scaled to zero"
	case st.Ready >= f.desired:
		st.State = "ready"
	case !f.failingSince.IsZero():
		st.State = "failing"
	default:
		st.State = "starting"
	}
	f.c.publish(st)
}
