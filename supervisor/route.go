package supervisor

import (
	"sync"
	"sync/atomic"
	"time"

	"faasd/config"
)

// Route is what the proxy sees of one function: its spec, its ready endpoints and whether
// its replicas keep failing. Every read is lock-free; the function's controller replaces
// the endpoint set, with the failure, as a whole.
type Route struct {
	Name string
	Logs *Logs

	spec atomic.Pointer[config.Function]
	set  atomic.Pointer[endpointSet]
	wake chan struct{} // capacity 1: many wakers, one pending wake-up
	gone atomic.Bool
}

type endpointSet struct {
	eps     []*Endpoint
	failing *Failing      // nil unless the function is failing
	changed chan struct{} // closed when this set is replaced
}

// Failing says why a function's replicas keep failing, as a caller is told while no
// replica is ready.
type Failing struct {
	Since     time.Time // the first fast failure of this run of them
	Failures  int       // fast failures in a row
	LastError string
	RetryAt   time.Time // when the next replica starts; past: one is starting now
}

func newRoute(spec *config.Function, logs *Logs) *Route {
	r := &Route{Name: spec.Name, Logs: logs, wake: make(chan struct{}, 1)}
	r.spec.Store(spec)
	r.set.Store(&endpointSet{changed: make(chan struct{})})
	return r
}

// Spec is the function's current spec.
func (r *Route) Spec() *config.Function { return r.spec.Load() }

// Endpoints returns the ready endpoints and a channel closed as soon as they change, so a
// caller that finds none can wait for readiness without polling.
func (r *Route) Endpoints() ([]*Endpoint, <-chan struct{}) {
	s := r.set.Load()
	return s.eps, s.changed
}

// Failing returns why the function fails when it also has no ready endpoint, so that a
// call cannot be served until a replica stops failing; nil otherwise. A failing function
// whose older replicas still serve (a broken spec rolling over) keeps serving. It reads
// the same set as Endpoints, so a change of either closes Endpoints' channel.
func (r *Route) Failing() *Failing {
	s := r.set.Load()
	if len(s.eps) > 0 {
		return nil
	}
	return s.failing
}

// Gone reports whether the function was removed; waiters should give up.
func (r *Route) Gone() bool { return r.gone.Load() }

// Wake asks for at least one replica: a request arrived for a function at zero.
func (r *Route) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *Route) publish(eps []*Endpoint, failing *Failing) {
	old := r.set.Swap(&endpointSet{eps: eps, failing: failing, changed: make(chan struct{})})
	close(old.changed)
}

// Endpoint is one ready replica as the proxy uses it.
type Endpoint struct {
	Addr    string // host:port on loopback
	Replica string // instance id, for logs and headers

	inflight  atomic.Int64
	leaving   atomic.Bool
	leaveOnce sync.Once
	left      chan struct{} // closed when the replica starts leaving
	drainOnce sync.Once
	drained   chan struct{} // closed when it has left and nothing is in flight
}

func newEndpoint(addr, replica string) *Endpoint {
	return &Endpoint{Addr: addr, Replica: replica, left: make(chan struct{}), drained: make(chan struct{})}
}

// Leaving is closed when the replica takes no more requests. The proxy closes its idle
// connections to it then: a single-threaded server blocked on an idle keep-alive
// connection would otherwise never see its SIGTERM.
func (e *Endpoint) Leaving() <-chan struct{} { return e.left }

// Drained is closed once the replica has left and its last request has finished.
func (e *Endpoint) Drained() <-chan struct{} { return e.drained }

// Acquire counts a request in flight. It fails once the replica is leaving, so a request
// never lands on a replica whose drain has already finished.
func (e *Endpoint) Acquire() bool {
	e.inflight.Add(1)
	// The supervisor sets leaving before it reads inflight, and we add before we read
	// leaving: one of the two sides always sees the other.
	if e.leaving.Load() {
		e.Release()
		return false
	}
	return true
}

// Release ends a request counted by Acquire.
func (e *Endpoint) Release() {
	if e.inflight.Add(-1) == 0 && e.leaving.Load() {
		e.drainOnce.Do(func() { close(e.drained) })
	}
}

// InFlight is the number of requests being served.
func (e *Endpoint) InFlight() int64 { return e.inflight.Load() }

// leave stops new requests; the returned channel closes once in-flight ones have finished.
func (e *Endpoint) leave() <-chan struct{} {
	e.leaving.Store(true)
	e.leaveOnce.Do(func() { close(e.left) })
	if e.inflight.Load() == 0 {
		e.drainOnce.Do(func() { close(e.drained) })
	}
	return e.drained
}
