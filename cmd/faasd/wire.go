package main

import (
	"faasd/config"
	"faasd/proxy"
	"faasd/scaler"
	"faasd/supervisor"
)

// The adapters below fit the supervisor and the proxy to the small interfaces their
// consumers declare; they hold no state and decide nothing.

// scaleTarget lets the scaler read and set replica counts of the supervisor.
type scaleTarget struct{ sup *supervisor.Supervisor }

func (t scaleTarget) Functions() []scaler.Function {
	statuses := t.sup.Statuses()
	out := make([]scaler.Function, 0, len(statuses))
	for _, st := range statuses {
		route, ok := t.sup.Route(st.Name)
		if !ok {
			continue
		}
		out = append(out, scaler.Function{Name: st.Name, Policy: route.Spec().Scale, Replicas: st.Desired, Ready: st.Ready})
	}
	return out
}

func (t scaleTarget) Scale(name string, n int) error { return t.sup.Scale(name, n) }

// loadSource lets the scaler read the proxy's counters. In flight includes requests held
// while a function wakes: they are load the new replicas must take. The proxy is set
// after both are built, before the scaler runs: each needs the other.
type loadSource struct{ px *proxy.Proxy }

func (s *loadSource) Observe(name string) scaler.Observation {
	st := s.px.Stats(name)
	lat := s.px.Latency(name)
	return scaler.Observation{Requests: st.Requests, InFlight: int(st.InFlight), Held: int(st.Held),
		ColdStarts: st.ColdStarts, Latency: &lat}
}

// runner lets the service gate hand functions to the supervisor.
type runner struct{ sup *supervisor.Supervisor }

func (r runner) Apply(fns map[string]*config.Function) { r.sup.Apply(fns) }

func (r runner) Running(name string) bool {
	_, ok := r.sup.Status(name)
	return ok
}
