package supervisor

import (
	"strconv"

	"faasd/config"
)

// NewStaticRoute returns a route to fixed addresses that no supervisor manages, for
// testing the proxy against servers it did not start. SetEndpoints changes them.
func NewStaticRoute(spec *config.Function, addrs ...string) *Route {
	r := newRoute(spec, NewLogs(1))
	r.SetEndpoints(addrs...)
	return r
}

// SetEndpoints publishes a new set of endpoints on a static route, waking waiters.
func (r *Route) SetEndpoints(addrs ...string) {
	eps := make([]*Endpoint, len(addrs))
	for i, a := range addrs {
		eps[i] = newEndpoint(a, strconv.Itoa(i+1))
	}
	r.publish(eps, r.set.Load().failing)
}

// SetFailing publishes a static route's function as failing (nil: recovered), keeping its
// endpoints, and wakes waiters.
func (r *Route) SetFailing(f *Failing) {
	r.publish(r.set.Load().eps, f)
}
