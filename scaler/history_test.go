package scaler

import (
	"testing"
	"time"

	"faasd/internal/latency"
)

// set replaces a function's observation wholesale.
func (s *fakeSource) set(name string, f func(*Observation)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.obs[name]
	f(&o)
	s.obs[name] = o
}

func TestHistoryRecordsEveryTickAndEveryChange(t *testing.T) {
	const fn = "hist"
	tgt := newTarget(Function{Name: fn, Policy: policy(1, 5, zeroAfter(10*time.Second)), Replicas: 1, Ready: 1})
	src, clk := newSource(), newClock()
	s := New(tgt, src, Settings{DownWindow: 5 * time.Second}, clk.now, nil)
	var lat latency.Histogram

	clk.second(s, src, fn, 0) // first sight
	// Load: 20 req/s that take 10 ms, two of them 200 ms.
	for range 3 {
		for i := range 20 {
			d := 10 * time.Millisecond
			if i < 2 {
				d = 200 * time.Millisecond
			}
			lat.Observe(d)
		}
		snap := lat.Snapshot()
		src.set(fn, func(o *Observation) { o.Latency = &snap })
		clk.second(s, src, fn, 20)
	}
	h, ok := s.History(fn, 0)
	if !ok {
		t.Fatal("no history for a function the scaler has seen")
	}
	if h.Interval != time.Second || h.Seq != 4 || len(h.Samples) != 4 {
		t.Fatalf("history: interval %v, seq %d, %d samples; want 1s, 4, 4", h.Interval, h.Seq, len(h.Samples))
	}
	last := h.Samples[3]
	if last.Seq != 4 || !last.At.Equal(clk.now()) || last.RPS != 20 || last.Desired != 5 || last.Ready != 1 {
		t.Errorf("last sample %+v, want seq 4 at now, 20 req/s, desired 5, ready 1", last)
	}
	// The first snapshot is the baseline: latency shows from the second loaded tick on.
	if h.Samples[1].P50 != 0 {
		t.Errorf("p50 without a baseline: %v", h.Samples[1].P50)
	}
	if p50, p99 := last.P50, last.P99; p50 < 10*time.Millisecond || p50 > 13*time.Millisecond ||
		p99 < 200*time.Millisecond || p99 > 250*time.Millisecond {
		t.Errorf("p50 %v, p99 %v; want about 10ms and 200ms", p50, p99)
	}
	if len(h.Changes) != 1 || h.Changes[0].From != 1 || h.Changes[0].To != 5 || h.Changes[0].Reason != ReasonLoad || h.Changes[0].Seq != 2 {
		t.Errorf("changes %+v, want 1 to 5 for load at tick 2", h.Changes)
	}

	// Only what is new after since.
	since := h.Seq
	if h, _ := s.History(fn, since); len(h.Samples) != 0 || len(h.Changes) != 0 || h.Seq != since {
		t.Errorf("nothing new: %+v", h)
	}

	// A scale through the API, then idle to zero, then a wake.
	tgt.set(fn, 2)
	clk.second(s, src, fn, 0)
	for tgt.replicas(fn) != 0 {
		clk.second(s, src, fn, 0)
	}
	tgt.set(fn, 1)
	src.set(fn, func(o *Observation) { o.Held, o.InFlight = 1, 1 })
	clk.second(s, src, fn, 1)
	src.set(fn, func(o *Observation) { o.Held, o.InFlight, o.ColdStarts = 0, 0, 1 })
	clk.second(s, src, fn, 0)

	h, _ = s.History(fn, since)
	var got []Change
	for _, c := range h.Changes {
		got = append(got, Change{From: c.From, To: c.To, Reason: c.Reason})
	}
	want := []Change{{From: 5, To: 2, Reason: ReasonExternal}, {From: 2, To: 1, Reason: ReasonStabilized},
		{From: 1, To: 0, Reason: ReasonIdle}, {From: 0, To: 1, Reason: ReasonWake}}
	if len(got) != len(want) {
		t.Fatalf("changes %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("change %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if n := h.Samples[len(h.Samples)-1].ColdStarts; n != 1 {
		t.Errorf("cold starts in the last tick: %d, want 1", n)
	}
	if h.Samples[0].Seq != since+1 {
		t.Errorf("first sample after since %d has seq %d", since, h.Samples[0].Seq)
	}
}

func TestHistoryIsBounded(t *testing.T) {
	const fn = "long"
	tgt := newTarget(Function{Name: fn, Policy: policy(1, 5), Replicas: 1})
	src, clk := newSource(), newClock()
	s := New(tgt, src, Settings{DownWindow: 2 * time.Second}, clk.now, nil)
	const ticks = HistoryLen*2 + 7
	for i := range ticks {
		// Bursts every 10 s make a change up and one down each time.
		var rps uint64
		if i%10 < 2 {
			rps = 30
		}
		clk.second(s, src, fn, rps)
	}
	h, _ := s.History(fn, 0)
	if len(h.Samples) != HistoryLen || h.Samples[0].Seq != ticks-HistoryLen+1 || h.Samples[HistoryLen-1].Seq != ticks {
		t.Errorf("%d samples from seq %d to %d; want %d from %d to %d", len(h.Samples), h.Samples[0].Seq,
			h.Samples[len(h.Samples)-1].Seq, HistoryLen, ticks-HistoryLen+1, ticks)
	}
	if len(h.Changes) != changesLen {
		t.Errorf("%d changes kept, want %d", len(h.Changes), changesLen)
	}
	for i := 1; i < len(h.Changes); i++ {
		if h.Changes[i].Seq <= h.Changes[i-1].Seq {
			t.Fatalf("changes out of order at %d: %+v", i, h.Changes[i-1:i+1])
		}
	}
}

func TestHistoryOfAFunctionThatWentIsForgotten(t *testing.T) {
	const fn = "gone"
	tgt := newTarget(Function{Name: fn, Policy: policy(1, 5), Replicas: 1})
	src, clk := newSource(), newClock()
	s := New(tgt, src, Settings{}, clk.now, nil)
	if _, ok := s.History(fn, 0); ok {
		t.Error("history before the first tick")
	}
	clk.second(s, src, fn, 0)
	tgt.remove(fn)
	clk.second(s, src, fn, 0)
	if _, ok := s.History(fn, 0); ok {
		t.Error("history of a removed function")
	}
}

// A full ring takes a sample in place.
func TestHistoryRingDoesNotAllocateWhenFull(t *testing.T) {
	var h history
	for range HistoryLen {
		h.record(Sample{}, Observation{})
	}
	if n := testing.AllocsPerRun(100, func() { h.record(Sample{RPS: 1}, Observation{}) }); n != 0 {
		t.Errorf("%v allocations per sample", n)
	}
}
