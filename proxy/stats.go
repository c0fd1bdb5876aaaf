package proxy

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"faasd/api"
	"faasd/internal/latency"
)

// Stats are a function's request counters as the scaler, the API and the UI read them.
type Stats struct {
	Requests   uint64        // started, since the daemon started; not those turned away for a failing function
	InFlight   int64         // being served or waiting for a replica
	Held       int64         // waiting for a replica right now
	ColdStarts uint64        // requests that had to wait for a replica
	ColdWait   time.Duration // total time those requests waited
}

// counters is one function's share of the counters. Everything on the request path is
// an atomic or a per-function map, never a lock shared by all functions.
type counters struct {
	name          string
	started       atomic.Uint64
	completed     atomic.Uint64
	inflight      atomic.Int64
	held          atomic.Int64
	coldStarts    atomic.Uint64
	coldWaitNanos atomic.Uint64
	latency       latency.Histogram // of every request, for the scaler's history

	startedMetric *metrics.Counter
	mu            sync.Mutex
	byCode        map[int]*codeMetrics
	set           *metrics.Set
}

type codeMetrics struct {
	total    *metrics.Counter
	duration *metrics.PrometheusHistogram
}

func (c *counters) snapshot() Stats {
	return Stats{
		Requests:   c.started.Load(),
		InFlight:   c.inflight.Load(),
		Held:       c.held.Load(),
		ColdStarts: c.coldStarts.Load(),
		ColdWait:   time.Duration(c.coldWaitNanos.Load()),
	}
}

func (c *counters) begin() {
	c.started.Add(1)
	c.inflight.Add(1)
	c.startedMetric.Inc()
}

func (c *counters) end(code int, d time.Duration) {
	c.inflight.Add(-1)
	c.latency.Observe(d)
	c.finished(code, d)
}

// turnedAway counts a call answered at once, without a replica, because its function is
// failing: in the metrics by its code and as an invocation, but not as load for the
// scaler (started, in flight) nor in the latency of the function's answers.
func (c *counters) turnedAway(code int, d time.Duration) {
	c.startedMetric.Inc()
	c.finished(code, d)
}

func (c *counters) finished(code int, d time.Duration) {
	c.completed.Add(1)
	c.mu.Lock()
	m := c.byCode[code]
	if m == nil {
		labels := fmt.Sprintf(`{function_name=%q,code=%q}`, c.name+"."+api.Namespace, strconv.Itoa(code))
		m = &codeMetrics{
			total:    c.set.GetOrCreateCounter("gateway_function_invocation_total" + labels),
			duration: c.set.GetOrCreatePrometheusHistogram("gateway_functions_seconds" + labels),
		}
		c.byCode[code] = m
	}
	c.mu.Unlock()
	m.total.Inc()
	m.duration.Update(d.Seconds())
}

// statsTable maps function names to counters; functions come and go rarely, requests
// look them up constantly, hence sync.Map.
type statsTable struct {
	m   sync.Map // name → *counters
	set *metrics.Set
}

func (t *statsTable) get(name string) *counters {
	if c, ok := t.m.Load(name); ok {
		return c.(*counters)
	}
	c := &counters{name: name, byCode: map[int]*codeMetrics{}, set: t.set}
	c.startedMetric = t.set.GetOrCreateCounter(fmt.Sprintf(`gateway_function_invocation_started{function_name=%q}`, name+"."+api.Namespace))
	actual, _ := t.m.LoadOrStore(name, c)
	return actual.(*counters)
}
