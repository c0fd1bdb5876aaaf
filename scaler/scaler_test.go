package scaler

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeTarget plays the supervisor: it keeps the desired count of each function.
type fakeTarget struct {
	mu     sync.Mutex
	fns    map[string]Function
	calls  []scaleCall
	fail   error         // returned by Scale while set
	listed chan struct{} // if set, receives (without blocking) on every Functions call
}

type scaleCall struct {
	name string
	n    int
}

func newTarget(fns ...Function) *fakeTarget {
	t := &fakeTarget{fns: make(map[string]Function)}
	for _, fn := range fns {
		t.fns[fn.Name] = fn
	}
	return t
}

func (t *fakeTarget) Functions() []Function {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.listed != nil {
		select {
		case t.listed <- struct{}{}:
		default:
		}
	}
	var out []Function
	for _, fn := range t.fns {
		out = append(out, fn)
	}
	slices.SortFunc(out, func(a, b Function) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

func (t *fakeTarget) Scale(name string, n int) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.calls = append(t.calls, scaleCall{name, n})
	if t.fail != nil {
		return t.fail
	}
	fn, ok := t.fns[name]
	if !ok {
		return errors.New("not found")
	}
	fn.Replicas = n
	t.fns[name] = fn
	return nil
}

// set is a scale through the API, or the proxy waking a function.
func (t *fakeTarget) set(name string, n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fn := t.fns[name]
	fn.Replicas = n
	t.fns[name] = fn
}

func (t *fakeTarget) remove(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.fns, name)
}

func (t *fakeTarget) add(fn Function) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.fns[fn.Name] = fn
}

func (t *fakeTarget) replicas(name string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.fns[name].Replicas
}

func (t *fakeTarget) scaleCalls() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.calls)
}

// fakeSource plays the proxy's counters.
type fakeSource struct {
	mu  sync.Mutex
	obs map[string]Observation
}

func newSource() *fakeSource { return &fakeSource{obs: make(map[string]Observation)} }

func (s *fakeSource) Observe(name string) Observation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.obs[name]
}

func (s *fakeSource) hit(name string, n uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.obs[name]
	o.Requests += n
	s.obs[name] = o
}

func (s *fakeSource) reset(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.obs, name)
}

// clock is a fake clock that the test moves a second at a time.
type clock struct{ t time.Time }

func newClock() *clock { return &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) now() time.Time { return c.t }

// second lets one second pass, with rps requests started during it, then ticks s.
func (c *clock) second(s *Scaler, src *fakeSource, name string, rps uint64) {
	c.t = c.t.Add(time.Second)
	if rps > 0 {
		src.hit(name, rps)
	}
	s.Step(c.now())
}

// logs collects the JSON records a Scaler writes.
type logs struct{ buf bytes.Buffer }

func (l *logs) logger() *slog.Logger { return slog.New(slog.NewJSONHandler(&l.buf, nil)) }

func (l *logs) records(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	dec := json.NewDecoder(bytes.NewReader(l.buf.Bytes()))
	for dec.More() {
		var r map[string]any
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("decode log: %v", err)
		}
		out = append(out, r)
	}
	return out
}

// OpenFaaS certifier, Test_ScaleUpAndDownFromThroughPut: min 1, max 2, hey at ~10 req/s. The
// certifier polls once a second and stops the load when it sees 2; replicas must then
// be exactly 1 within 60 s, and never 0.
func TestCertifierScaleUpAndDownFromThroughput(t *testing.T) {
	const fn = "throughput"
	tgt := newTarget(Function{Name: fn, Policy: policy(1, 2), Replicas: 1})
	src, clk := newSource(), newClock()
	s := New(tgt, src, Settings{}, clk.now, nil)

	for range 5 { // deployed, idle for a while before the load starts
		clk.second(s, src, fn, 0)
	}
	up := 0
	for tgt.replicas(fn) != 2 {
		up++
		if up > 60 {
			t.Fatalf("replicas still %d after 60 s of 10 req/s", tgt.replicas(fn))
		}
		clk.second(s, src, fn, 10)
	}
	if up > 2 {
		t.Errorf("scaled up after %d s of sustained load, want at most 2 ticks", up)
	}

	down := 0
	for tgt.replicas(fn) > 1 {
		down++
		if down > 60 {
			t.Fatalf("replicas still %d 60 s after the load stopped", tgt.replicas(fn))
		}
		clk.second(s, src, fn, 0)
	}
	if got := tgt.replicas(fn); got != 1 {
		t.Fatalf("after the load replicas = %d, want exactly 1", got)
	}
	if down < 10 {
		t.Errorf("scaled down %d s after the load stopped: no stabilization window", down)
	}
	for i := range 900 {
		clk.second(s, src, fn, 0)
		if got := tgt.replicas(fn); got != 1 {
			t.Fatalf("idle for %d s: replicas = %d, want 1 (no zero label)", i+1, got)
		}
	}
}

// OpenFaaS certifier, Test_ScalingDisabledViaLabels: min = max = 2 under the full load.
func TestCertifierScalingDisabledViaLabels(t *testing.T) {
	const fn = "disabled"
	tgt := newTarget(Function{Name: fn, Policy: policy(2, 2), Replicas: 2})
	src, clk := newSource(), newClock()
	s := New(tgt, src, Settings{}, clk.now, nil)

	for range 100 {
		clk.second(s, src, fn, 10)
	}
	for range 120 {
		clk.second(s, src, fn, 0)
	}
	if got := tgt.replicas(fn); got != 2 {
		t.Errorf("replicas = %d, want 2", got)
	}
	if n := tgt.scaleCalls(); n != 0 {
		t.Errorf("Scale called %d times with autoscaling disabled", n)
	}
}

// OpenFaaS certifier, Test_ScaleFromZeroDuringInvoke: a scale to 0 through the API holds until
// a request wakes the function, and the woken function is not put back to 0.
func TestCertifierScaleToZeroHoldsUntilWake(t *testing.T) {
	const fn = "wake"
	tgt := newTarget(Function{Name: fn, Policy: policy(1, 5), Replicas: 1})
	src, clk := newSource(), newClock()
	s := New(tgt, src, Settings{}, clk.now, nil)

	clk.second(s, src, fn, 0)
	tgt.set(fn, 0) // PUT /system/scale-function {"replicas": 0}
	for i := range 300 {
		clk.second(s, src, fn, 0)
		if got := tgt.replicas(fn); got != 0 {
			t.Fatalf("%d s after a scale to 0: replicas = %d, want 0", i+1, got)
		}
	}
	if n := tgt.scaleCalls(); n != 0 {
		t.Errorf("Scale called %d times on a function held at 0", n)
	}

	tgt.set(fn, 1)            // the proxy wakes it for the POST...
	clk.second(s, src, fn, 1) // ...which the counters see
	for i := range 300 {
		clk.second(s, src, fn, 0)
		if got := tgt.replicas(fn); got != 1 {
			t.Fatalf("%d s after the wake: replicas = %d, want 1", i+1, got)
		}
	}
}

func TestManualScaleIsHeldForTheWindowThenStabilized(t *testing.T) {
	const fn = "manual"
	var l logs
	tgt := newTarget(Function{Name: fn, Policy: policy(1, 5), Replicas: 1})
	src, clk := newSource(), newClock()
	s := New(tgt, src, Settings{DownWindow: 20 * time.Second}, clk.now, l.logger())

	for range 30 {
		clk.second(s, src, fn, 0)
	}
	tgt.set(fn, 4)
	for i := range 20 {
		clk.second(s, src, fn, 0)
		if got := tgt.replicas(fn); got != 4 {
			t.Fatalf("%d s after a manual scale to 4: replicas = %d", i+1, got)
		}
	}
	if st, _ := s.Status(fn); st.Reason != ReasonExternal {
		t.Errorf("status reason = %q, want %q", st.Reason, ReasonExternal)
	}
	clk.second(s, src, fn, 0)
	if got := tgt.replicas(fn); got != 1 {
		t.Errorf("after the window: replicas = %d, want 1", got)
	}

	var got []map[string]any
	for _, r := range l.records(t) {
		got = append(got, map[string]any{"function": r["function"], "from": r["from"], "to": r["to"], "reason": r["reason"]})
	}
	want := []map[string]any{
		{"function": fn, "from": 1.0, "to": 4.0, "reason": "external"},
		{"function": fn, "from": 4.0, "to": 1.0, "reason": "stabilized"},
	}
	if len(got) != len(want) {
		t.Fatalf("logged %v, want %v", got, want)
	}
	for i := range want {
		for k, v := range want[i] {
			if got[i][k] != v {
				t.Errorf("log %d: %s = %v, want %v", i, k, got[i][k], v)
			}
		}
	}
}

func TestFailedScaleIsRetriedNotTakenForManual(t *testing.T) {
	const fn = "flaky"
	tgt := newTarget(Function{Name: fn, Policy: policy(1, 5), Replicas: 1})
	src, clk := newSource(), newClock()
	s := New(tgt, src, Settings{DownWindow: 5 * time.Second}, clk.now, nil)

	clk.second(s, src, fn, 0)
	tgt.set(fn, 4)
	tgt.fail = errors.New("supervisor busy")
	for i := 0; tgt.scaleCalls() == 0; i++ {
		if i > 10 {
			t.Fatal("no scale down of a manual 4 within 10 s of a 5 s window")
		}
		clk.second(s, src, fn, 0)
	}
	if st, _ := s.Status(fn); st.Desired != 4 || st.Reason != ReasonExternal {
		t.Errorf("status after a failed scale = %+v, want desired 4 and no change", st)
	}

	// Were the failed 1 remembered as the scaler's own count, the 4 would look like a
	// new manual scale and be held for another window.
	tgt.fail = nil
	clk.second(s, src, fn, 0)
	if got := tgt.replicas(fn); got != 1 {
		t.Errorf("replicas = %d the tick after a failed scale down, want 1", got)
	}
	if st, _ := s.Status(fn); st.Reason != ReasonStabilized {
		t.Errorf("status reason = %q, want %q", st.Reason, ReasonStabilized)
	}
}

func TestFunctionsThatGoAreForgotten(t *testing.T) {
	const fn = "gone"
	tgt := newTarget(Function{Name: fn, Policy: policy(1, 5), Replicas: 1})
	src, clk := newSource(), newClock()
	s := New(tgt, src, Settings{}, clk.now, nil)

	for range 40 {
		clk.second(s, src, fn, 3)
	}
	if _, ok := s.Status(fn); !ok {
		t.Fatal("no status for a function the scaler has seen")
	}
	tgt.remove(fn)
	clk.second(s, src, fn, 0)
	if _, ok := s.Status(fn); ok {
		t.Error("status kept for a function that is gone")
	}
	if len(s.states) != 0 {
		t.Errorf("state kept for %d functions that are gone", len(s.states))
	}

	// Re-created: its counter starts again, and its history is not a burst.
	src.reset(fn)
	src.hit(fn, 2)
	tgt.add(Function{Name: fn, Policy: policy(1, 5), Replicas: 1})
	for range 60 {
		clk.second(s, src, fn, 0)
	}
	if n := tgt.scaleCalls(); n != 0 {
		t.Errorf("Scale called %d times for a quiet re-created function", n)
	}
}

func TestStatusReportsTheLastDecision(t *testing.T) {
	const fn = "seen"
	tgt := newTarget(Function{Name: fn, Policy: policy(1, 5, capacity(2)), Replicas: 1})
	src, clk := newSource(), newClock()
	s := New(tgt, src, Settings{}, clk.now, nil)

	if _, ok := s.Status(fn); ok {
		t.Error("status for a function never stepped")
	}
	clk.second(s, src, fn, 0)
	src.mu.Lock()
	src.obs[fn] = Observation{Requests: 8, InFlight: 6}
	src.mu.Unlock()
	clk.second(s, src, fn, 0)

	got, ok := s.Status(fn)
	want := Status{Current: 1, Desired: 3, RPS: 8, InFlight: 6, DecidedAt: clk.now(), ChangedAt: clk.now(), Reason: ReasonLoad}
	if !ok || got != want {
		t.Errorf("status = %+v, %v\nwant     %+v", got, ok, want)
	}
	clk.second(s, src, fn, 0)
	got, _ = s.Status(fn)
	if got.Current != 3 || got.ChangedAt == clk.now() || got.DecidedAt != clk.now() || got.Reason != ReasonLoad {
		t.Errorf("status a tick later = %+v: want current 3, the same change, a new decision time", got)
	}
}

func TestRunStepsUntilCancelled(t *testing.T) {
	const fn = "running"
	tgt := newTarget(Function{Name: fn, Policy: policy(1, 5), Replicas: 1})
	tgt.listed = make(chan struct{})
	src, clk := newSource(), newClock()
	s := New(tgt, src, Settings{Interval: time.Millisecond}, clk.now, nil)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	deadline := time.After(10 * time.Second)
	for range 3 {
		select {
		case <-tgt.listed:
			s.Status(fn) // read concurrently with the loop, for the race detector
		case <-deadline:
			t.Fatal("Run did not tick three times within 10 s")
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run returned %v after cancel, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10 s of cancel")
	}
	if _, ok := s.Status(fn); !ok {
		t.Error("Run never stepped the function")
	}
}

// The scenario a user met: traffic, a scale to 0 through the API within the tick, and the
// scaler starting a replica again a second later from the old rate.
func TestManualScaleToZeroRightAfterTrafficIsNotFought(t *testing.T) {
	const fn = "quiet"
	var l logs
	tgt := newTarget(Function{Name: fn, Policy: policy(1, 5), Replicas: 1})
	src, clk := newSource(), newClock()
	s := New(tgt, src, Settings{}, clk.now, l.logger())
	for range 40 {
		clk.second(s, src, fn, 0)
	}
	for range 10 {
		clk.second(s, src, fn, 12)
	}
	tgt.set(fn, 0)
	clk.second(s, src, fn, 6) // requests the replica served before it stopped
	for i := range 120 {
		if got := tgt.replicas(fn); got != 0 {
			t.Fatalf("%d s after a scale to 0: replicas = %d", i+1, got)
		}
		clk.second(s, src, fn, 0)
	}
	for _, r := range l.records(t) {
		if r["msg"] == "scaled" && r["from"] == 0.0 {
			t.Errorf("the scaler raised the function from zero: %v", r)
		}
	}
}
