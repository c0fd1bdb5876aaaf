package proxy

import (
	"fmt"
	"io"

	"github.com/VictoriaMetrics/metrics"

	"faasd/api"
	"faasd/scaler"
	"faasd/supervisor"
)

// ReplicaStates is what /metrics reports of the supervisor's functions.
type ReplicaStates interface {
	Statuses() []supervisor.Status
}

// Rates is what /metrics reports of the scaler: the smoothed request rate it scales on.
type Rates interface {
	Status(name string) (scaler.Status, bool)
}

// ServiceStates is what /metrics reports of the services.
type ServiceStates interface {
	Statuses() []supervisor.ServiceStatus
}

// Gauges are the sources of the state /metrics reports beside the proxy's own counters,
// read on every scrape. A nil source reports nothing.
type Gauges struct {
	Replicas ReplicaStates
	Rates    Rates
	Services ServiceStates
}

// ReportGauges adds g to every scrape of /metrics.
func (p *Proxy) ReportGauges(g Gauges) {
	if g.Replicas != nil {
		p.metrics.RegisterMetricsWriter(func(w io.Writer) { p.writeFunctionGauges(w, g.Replicas, g.Rates) })
	}
	if g.Services != nil {
		p.metrics.RegisterMetricsWriter(func(w io.Writer) { writeServiceGauges(w, g.Services) })
	}
}

// writeFunctionGauges writes each function's replicas and requests now, labelled as
// OpenFaaS labels its gateway's series.
func (p *Proxy) writeFunctionGauges(w io.Writer, replicas ReplicaStates, rates Rates) {
	for _, st := range replicas.Statuses() {
		label := fmt.Sprintf(`{function_name=%q}`, st.Name+"."+api.Namespace)
		stats := p.Stats(st.Name)
		metrics.WriteGaugeUint64(w, "gateway_service_count"+label, uint64(st.Desired))
		metrics.WriteGaugeUint64(w, "faasd_replicas_ready"+label, uint64(st.Ready))
		metrics.WriteGaugeUint64(w, "faasd_replicas_starting"+label, uint64(st.Starting))
		metrics.WriteGaugeUint64(w, "faasd_replica_failures"+label, uint64(st.Failures))
		metrics.WriteGaugeUint64(w, "faasd_requests_in_flight"+label, uint64(max(stats.InFlight, 0)))
		metrics.WriteGaugeUint64(w, "faasd_requests_held"+label, uint64(max(stats.Held, 0)))
		metrics.WriteCounterUint64(w, "faasd_cold_starts_total"+label, stats.ColdStarts)
		metrics.WriteCounterFloat64(w, "faasd_cold_start_wait_seconds_total"+label, stats.ColdWait.Seconds())
		metrics.WriteCounterUint64(w, "faasd_replica_oom_kills_total"+label, st.OOMKills)
		writeUsage(w, "faasd_function", label, st.Usage)
		if rates == nil {
			continue
		}
		if s, ok := rates.Status(st.Name); ok {
			metrics.WriteGaugeFloat64(w, "faasd_requests_per_second"+label, s.RPS)
		}
	}
}

// writeServiceGauges writes whether each service is ready and how often it restarted.
func writeServiceGauges(w io.Writer, services ServiceStates) {
	for _, st := range services.Statuses() {
		label := fmt.Sprintf(`{service=%q}`, st.Name)
		ready := uint64(0)
		if st.State == "ready" {
			ready = 1
		}
		metrics.WriteGaugeUint64(w, "faasd_service_ready"+label, ready)
		metrics.WriteGaugeUint64(w, "faasd_service_restarts"+label, uint64(st.Restarts))
		metrics.WriteGaugeUint64(w, "faasd_service_failures"+label, uint64(st.Failures))
		metrics.WriteCounterUint64(w, "faasd_service_oom_kills_total"+label, st.OOMKills)
		writeUsage(w, "faasd_service", label, st.Usage)
	}
}

// writeUsage writes the CPU time and memory a function's replicas or a service use, as
// last read from their cgroups; nothing where they are not measured.
func writeUsage(w io.Writer, prefix, label string, u *supervisor.Usage) {
	if u == nil {
		return
	}
	metrics.WriteCounterFloat64(w, prefix+"_cpu_seconds_total"+label, u.CPU.Seconds())
	metrics.WriteGaugeUint64(w, prefix+"_memory_bytes"+label, u.MemoryBytes)
}
