package proxy

import (
	"faasd/api"
	"faasd/supervisor"
)

// instances describes a function's replicas for the API. Requests in flight are read
// from the routing table, live, rather than from the supervisor's last published status,
// which changes only when a replica does.
func (p *Proxy) instances(name string, replicas []supervisor.ReplicaStatus) []api.Instance {
	if len(replicas) == 0 {
		return nil
	}
	var eps []*supervisor.Endpoint
	if route, ok := p.backends.Route(name); ok {
		eps, _ = route.Endpoints()
	}
	out := make([]api.Instance, 0, len(replicas))
	for _, r := range replicas {
		in := api.Instance{ID: r.ID, PID: r.PID, Port: r.Port, State: r.State, StartedAt: r.Started, InFlight: r.InFlight, Usage: usage(r.Usage)}
		for _, ep := range eps {
			if ep.Replica == r.ID {
				in.InFlight = ep.InFlight()
			}
		}
		out = append(out, in)
	}
	return out
}
