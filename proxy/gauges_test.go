package proxy

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"faasd/internal/testkit"
	"faasd/scaler"
	"faasd/supervisor"
)

type replicaStates []supervisor.Status

func (r replicaStates) Statuses() []supervisor.Status { return r }

type rates map[string]float64

func (r rates) Status(name string) (scaler.Status, bool) {
	rps, ok := r[name]
	return scaler.Status{RPS: rps}, ok
}

type serviceStates []supervisor.ServiceStatus

func (s serviceStates) Statuses() []supervisor.ServiceStatus { return s }

func TestMetricsReportReplicasRatesAndServices(t *testing.T) {
	p := New(Options{Backends: routes{}})
	p.ReportGauges(Gauges{
		Replicas: replicaStates{
			{Name: "hello", Desired: 3, Ready: 2, Starting: 1, Failures: 0, OOMKills: 2,
				Usage: &supervisor.Usage{CPU: 1500 * time.Millisecond, CPUMillis: 250, MemoryBytes: 64 << 20}},
			{Name: "sleepy", Desired: 0},
		},
		Rates: rates{"hello": 7.5},
		Services: serviceStates{
			{Name: "db", State: "ready", Restarts: 2, OOMKills: 1, Usage: &supervisor.Usage{CPU: 3 * time.Second, MemoryBytes: 1 << 30}},
			{Name: "cache", State: "failing", Failures: 4},
		},
	})
	srv := httptest.NewServer(p)
	defer srv.Close()
	resp, body := get(t, srv.URL+"/metrics")
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain; version=0.0.4" {
		t.Errorf("content type %q", ct)
	}
	m, err := testkit.ReadMetrics(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"gateway_service_count", []string{"function_name", "hello.openfaas-fn"}, 3},
		{"faasd_replicas_ready", []string{"function_name", "hello.openfaas-fn"}, 2},
		{"faasd_replicas_starting", []string{"function_name", "hello.openfaas-fn"}, 1},
		{"faasd_requests_per_second", []string{"function_name", "hello.openfaas-fn"}, 7.5},
		{"faasd_requests_in_flight", []string{"function_name", "hello.openfaas-fn"}, 0},
		{"faasd_cold_starts_total", []string{"function_name", "hello.openfaas-fn"}, 0},
		{"gateway_service_count", []string{"function_name", "sleepy.openfaas-fn"}, 0},
		{"faasd_service_ready", []string{"service", "db"}, 1},
		{"faasd_service_restarts", []string{"service", "db"}, 2},
		{"faasd_service_ready", []string{"service", "cache"}, 0},
		{"faasd_service_failures", []string{"service", "cache"}, 4},
		{"faasd_replica_oom_kills_total", []string{"function_name", "hello.openfaas-fn"}, 2},
		{"faasd_replica_oom_kills_total", []string{"function_name", "sleepy.openfaas-fn"}, 0},
		{"faasd_function_cpu_seconds_total", []string{"function_name", "hello.openfaas-fn"}, 1.5},
		{"faasd_function_memory_bytes", []string{"function_name", "hello.openfaas-fn"}, 64 << 20},
		{"faasd_service_oom_kills_total", []string{"service", "db"}, 1},
		{"faasd_service_cpu_seconds_total", []string{"service", "db"}, 3},
		{"faasd_service_memory_bytes", []string{"service", "db"}, 1 << 30},
	} {
		if got, ok := m.Value(tc.name, tc.labels...); !ok || got != tc.want {
			t.Errorf("%s%q = %v (present %v), want %v", tc.name, tc.labels, got, ok, tc.want)
		}
	}
	// The scaler has not seen sleepy, nor a cgroup measured it: no rate or usage is made
	// up for it.
	if v, ok := m.Value("faasd_requests_per_second", "function_name", "sleepy.openfaas-fn"); ok {
		t.Errorf("sleepy has a rate of %v", v)
	}
	if v, ok := m.Value("faasd_function_memory_bytes", "function_name", "sleepy.openfaas-fn"); ok {
		t.Errorf("sleepy has a memory use of %v", v)
	}
}
