package proxy

import (
	"sync/atomic"

	"faasd/supervisor"
)

// balancer picks the ready replica with the fewest requests in flight. Ties rotate, so
// that an idle function spreads requests instead of always using its first replica.
type balancer struct {
	next atomic.Uint32
}

// pick returns the least-loaded endpoint not in tried, or nil.
func (b *balancer) pick(eps []*supervisor.Endpoint, tried []*supervisor.Endpoint) *supervisor.Endpoint {
	n := len(eps)
	if n == 0 {
		return nil
	}
	if n == 1 && len(tried) == 0 {
		return eps[0]
	}
	start := int(b.next.Add(1)) % n
	var best *supervisor.Endpoint
	var bestLoad int64
	for i := range n {
		ep := eps[(start+i)%n]
		if contains(tried, ep) {
			continue
		}
		if load := ep.InFlight(); best == nil || load < bestLoad {
			best, bestLoad = ep, load
		}
	}
	return best
}

func contains(eps []*supervisor.Endpoint, ep *supervisor.Endpoint) bool {
	for _, e := range eps {
		if e == ep {
			return true
		}
	}
	return false
}
