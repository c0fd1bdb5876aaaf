package scaler

import (
	"fmt"
	"testing"
	"time"

	"faasd/internal/latency"
)

// BenchmarkStep is one tick over 100 busy functions with full histories: what the
// autoscaler and its history cost per tick, whether or not anyone reads them.
func BenchmarkStep(b *testing.B) {
	var fns []Function
	for i := range 100 {
		fns = append(fns, Function{Name: fmt.Sprintf("fn-%d", i), Policy: policy(1, 5), Replicas: 1, Ready: 1})
	}
	tgt := newTarget(fns...)
	src := newSource()
	var lat latency.Histogram
	clk := newClock()
	s := New(tgt, src, Settings{}, clk.now, nil)
	tick := func() {
		lat.Observe(3 * time.Millisecond)
		snap := lat.Snapshot()
		for _, fn := range fns {
			src.set(fn.Name, func(o *Observation) { o.Requests += 10; o.Latency = &snap })
		}
		clk.t = clk.t.Add(time.Second)
		s.Step(clk.now())
	}
	for range HistoryLen {
		tick()
	}
	b.ResetTimer()
	for b.Loop() {
		tick()
	}
}
