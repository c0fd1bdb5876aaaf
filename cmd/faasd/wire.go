package main

import (
	"fmt"
	"io"

	"github.com/VictoriaMetrics/metrics"

	"faasd/api"
	"faasd/proxy"
	"faasd/scaler"
	"faasd/supervisor"
)

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
		out = append(out, scaler.Function{Name: st.Name, Policy: route.Spec().Scale, Replicas: st.Desired})
	}
	return out
}

func (t scaleTarget) Scale(name string, n int) error { return t.sup.Scale(name, n) }

// loadSource lets the scaler read the proxy's counters. In flight includes requests held
// while a function wakes: they are load the new replicas must take.
type loadSource struct{ px *proxy.Proxy }

func (s loadSource) Observe(name string) scaler.Observation {
	st := s.px.Stats(name)
	return scaler.Observation{Requests: st.Requests, InFlight: int(st.InFlight)}
}

// writeFunctionMetrics adds the per-function state that lives outside the proxy's
// counters to every scrape of /metrics.
func writeFunctionMetrics(sup *supervisor.Supervisor, px *proxy.Proxy, sc *scaler.Scaler) func(io.Writer) {
	return func(w io.Writer) {
		for _, st := range sup.Statuses() {
			label := fmt.Sprintf(`{function_name=%q}`, st.Name+"."+api.Namespace)
			stats := px.Stats(st.Name)
			metrics.WriteGaugeUint64(w, "gateway_service_count"+label, uint64(st.Desired))
			metrics.WriteGaugeUint64(w, "faasd_replicas_ready"+label, uint64(st.Ready))
			metrics.WriteGaugeUint64(w, "faasd_replicas_starting"+label, uint64(st.Starting))
			metrics.WriteGaugeUint64(w, "faasd_replica_failures"+label, uint64(st.Failures))
			metrics.WriteGaugeUint64(w, "faasd_requests_in_flight"+label, uint64(max(stats.InFlight, 0)))
			metrics.WriteGaugeUint64(w, "faasd_requests_held"+label, uint64(max(stats.Held, 0)))
			metrics.WriteCounterUint64(w, "faasd_cold_starts_total"+label, stats.ColdStarts)
			metrics.WriteCounterFloat64(w, "faasd_cold_start_wait_seconds_total"+label, stats.ColdWait.Seconds())
			if s, ok := sc.Status(st.Name); ok {
				metrics.WriteGaugeFloat64(w, "faasd_requests_per_second"+label, s.RPS)
			}
		}
	}
}
