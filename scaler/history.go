package scaler

import (
	"time"

	"faasd/internal/latency"
)

// HistoryLen is how many ticks of samples a function's history keeps: ten minutes at the
// default interval. changesLen bounds its scaling changes the same way.
const (
	HistoryLen = 600
	changesLen = 100
)

// Sample is what the scaler saw and decided for one function at one tick.
type Sample struct {
	Seq        uint64 // the tick's number, the same for every function; only grows
	At         time.Time
	RPS        float64       // the smoothed rate the rule used
	InFlight   int           // requests in flight, held ones included
	Desired    int           // the count after the tick's decision
	Ready      int           // replicas ready when the tick began
	P50, P99   time.Duration // of the requests finished during the tick; 0 when none did or unknown
	ColdStarts uint64        // requests that waited for a replica, counted during the tick
}

// Change is one change of a function's replica count, by the scaler or from outside.
type Change struct {
	Seq      uint64
	At       time.Time
	From, To int
	Reason   Reason // ReasonExternal for a scale through the API or the CLI, ReasonWake for a wake
}

// History is a function's recent samples and changes, oldest first.
type History struct {
	Interval time.Duration // between two samples
	Seq      uint64        // the last tick; a later call with since = Seq returns what is new
	Samples  []Sample
	Changes  []Change
}

// history is the bounded record of one function: two rings, written once a tick, read by
// the API only when a page asks. A tick writes in place: no allocation once the rings are
// full, and none of it on the request path.
type history struct {
	samples ring[Sample]
	changes ring[Change]
	// The counters at the last tick, to turn cumulative ones into per-tick ones.
	coldStarts uint64
	latency    latency.Snapshot
	measured   bool // latency holds a snapshot
}

// record takes in one tick.
func (h *history) record(s Sample, obs Observation) {
	if obs.ColdStarts >= h.coldStarts {
		s.ColdStarts = obs.ColdStarts - h.coldStarts
	} else {
		s.ColdStarts = obs.ColdStarts // re-created: its counter started again
	}
	h.coldStarts = obs.ColdStarts
	if obs.Latency != nil {
		if h.measured && obs.Latency.Count(&h.latency) > 0 {
			s.P50 = obs.Latency.Quantile(&h.latency, 0.5)
			s.P99 = obs.Latency.Quantile(&h.latency, 0.99)
		}
		h.latency, h.measured = *obs.Latency, true
	}
	h.samples.push(s, HistoryLen)
}

// woke reports whether requests waited for a replica during the tick: a count raised from
// zero by the proxy rather than through the API.
func (h *history) woke(obs Observation) bool {
	return obs.Held > 0 || obs.ColdStarts != h.coldStarts
}

// between copies what came after the tick since, up to the tick upto.
func (h *history) between(since, upto uint64) ([]Sample, []Change) {
	samples := h.samples.after(func(s *Sample) bool { return s.Seq > since })
	changes := h.changes.after(func(c *Change) bool { return c.Seq > since })
	for len(samples) > 0 && samples[len(samples)-1].Seq > upto {
		samples = samples[:len(samples)-1]
	}
	for len(changes) > 0 && changes[len(changes)-1].Seq > upto {
		changes = changes[:len(changes)-1]
	}
	return samples, changes
}

// ring is a fixed-size circular buffer that grows to its size on demand, so a function
// seen for a minute holds a minute of samples, not ten.
type ring[T any] struct {
	items []T
	next  int // where the next item goes once the ring is full
}

func (r *ring[T]) push(v T, size int) {
	if len(r.items) < size {
		r.items = append(r.items, v)
		return
	}
	r.items[r.next] = v
	r.next = (r.next + 1) % len(r.items)
}

// after copies, oldest first, the items from the first one keep accepts on.
func (r *ring[T]) after(keep func(*T) bool) []T {
	n := len(r.items)
	start := n
	// Items are in order of the ticks that wrote them: find the first kept one from the
	// newest end, which is where a caller that polls finds what is new.
	for start > 0 && keep(&r.items[(r.next+start-1)%n]) {
		start--
	}
	out := make([]T, 0, n-start)
	for i := start; i < n; i++ {
		out = append(out, r.items[(r.next+i)%n])
	}
	return out
}
