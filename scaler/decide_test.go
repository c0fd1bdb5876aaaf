package scaler

import (
	"fmt"
	"testing"
	"time"

	"faasd/config"
)

// skip as a step's want accepts any count on that step.
const skip = -1

// step drives Decide for ticks one-second ticks. Each tick rps requests start and
// inFlight are in flight; every tick of the step must leave the count at want.
type step struct {
	ticks    int  // 1 when 0
	manual   *int // the API sets the count before the first tick
	reset    bool // the function is re-created before the first tick: its counter restarts at 0
	rps      uint64
	inFlight int
	held     int // of inFlight, waiting for a replica
	want     int
	reason   Reason // checked on the last tick when set
	external bool   // the first tick must report an external change
}

func n(v int) *int { return &v }

// idle is a number of quiet ticks that leaves the count at want.
func idle(ticks, want int) step { return step{ticks: ticks, want: want} }

// warm lets a freshly seen function's first hold run out, at count want.
func warm(want int) step { return idle(31, want) }

func policy(min, max int, opts ...func(*config.ScalePolicy)) config.ScalePolicy {
	p := config.DefaultScalePolicy
	p.Min, p.Max = min, max
	for _, o := range opts {
		o(&p)
	}
	return p
}

func zeroAfter(d time.Duration) func(*config.ScalePolicy) {
	return func(p *config.ScalePolicy) { p.Zero, p.ZeroDuration = true, d }
}

func capacity(target float64) func(*config.ScalePolicy) {
	return func(p *config.ScalePolicy) {
		p.Type, p.Target, p.TargetProportion = config.ScaleCapacity, target, 1
	}
}

// driver plays the supervisor and the proxy's counters around one State.
type driver struct {
	p        config.ScalePolicy
	cfg      Settings
	st       State
	now      time.Time
	requests uint64
	current  int
}

func (d *driver) tick(rps uint64, inFlight, held int) Decision {
	d.now = d.now.Add(time.Second)
	d.requests += rps
	dec := Decide(d.p, &d.st, Observation{Requests: d.requests, InFlight: inFlight, Held: held}, d.current, d.now, d.cfg)
	d.current = dec.Replicas
	return dec
}

func TestDecide(t *testing.T) {
	for _, tc := range []struct {
		name     string
		policy   config.ScalePolicy
		cfg      Settings
		start    int    // the count at first sight
		requests uint64 // the counter at first sight
		steps    []step
	}{
		{
			name: "IdleStaysAtMin", policy: policy(1, 5), start: 1,
			steps: []step{idle(300, 1)},
		},
		{
			name: "IdleStaysAtHigherMin", policy: policy(3, 5), start: 3,
			steps: []step{idle(300, 3)},
		},
		{
			name: "MinZeroWithoutZeroLabelKeepsOneReplica", policy: policy(0, 5), start: 1,
			steps: []step{idle(300, 1)},
		},
		{
			name: "FirstCounterValueIsHistoryNotLoad", policy: policy(1, 5), start: 1, requests: 1_000_000,
			steps: []step{{want: 1}, idle(60, 1)},
		},
		{
			name: "StepLoadScalesUpWithinTwoTicks", policy: policy(1, 5), start: 1,
			steps: []step{
				warm(1),
				{rps: 20, want: 3, reason: ReasonLoad}, // half the rate: the other tick was quiet
				{rps: 20, want: 5, reason: ReasonLoad},
				{ticks: 20, rps: 20, want: 5},
			},
		},
		{
			name: "LoadScalesUpAtOnceWhileFirstSightIsHeld", policy: policy(1, 5), start: 1,
			steps: []step{{want: 1}, {rps: 20, want: 5, reason: ReasonLoad}},
		},
		{
			name: "SingleBusyTickDoesNotScaleUp", policy: policy(1, 5), start: 1,
			steps: []step{warm(1), {rps: 9, want: 1}, idle(60, 1)},
		},
		{
			name: "SustainedLoadAtTargetTimesProportionNeedsOne", policy: policy(1, 5), start: 1,
			steps: []step{warm(1), {ticks: 30, rps: 4, want: 1}},
		},
		{
			name: "SustainedLoadJustAboveOneReplicaNeedsTwo", policy: policy(1, 5), start: 1,
			steps: []step{warm(1), {rps: 5, want: 1}, {ticks: 30, rps: 5, want: 2}},
		},
		{
			name: "LoadAtTwiceTheThresholdNeedsTwo", policy: policy(1, 5), start: 1,
			steps: []step{warm(1), {rps: 9, want: 1}, {ticks: 30, rps: 9, want: 2}},
		},
		{
			// 9 / (3 × 0.6) is 5.000000000000001 in float64.
			name: "ExactMultipleDoesNotRoundUpOnFloatNoise", policy: policy(1, 10, func(p *config.ScalePolicy) {
				p.Target, p.TargetProportion = 3, 0.6
			}), start: 1,
			steps: []step{warm(1), {rps: 9, want: skip}, {ticks: 30, rps: 9, want: 5}},
		},
		{
			name: "CountIsCeilOfLoadOverTarget", policy: policy(1, 5), start: 1,
			steps: []step{warm(1), {rps: 10, want: 2}, {ticks: 30, rps: 10, want: 3}},
		},
		{
			name: "CountIsClampedAtMax", policy: policy(1, 3), start: 1,
			steps: []step{warm(1), {ticks: 30, rps: 1000, want: 3}},
		},
		{
			name: "ScaleDownWaitsForTheWindow", policy: policy(1, 5), start: 1,
			steps: []step{
				warm(1),
				{ticks: 5, rps: 20, want: skip},
				{rps: 20, want: 5},
				idle(29, 5),
				{want: 3, reason: ReasonStabilized}, // the smoothed tail of the load
				{want: 1, reason: ReasonStabilized},
				idle(300, 1),
			},
		},
		{
			name: "ShorterWindowScalesDownSooner", policy: policy(1, 5), cfg: Settings{DownWindow: 10 * time.Second}, start: 1,
			steps: []step{
				{want: 1}, idle(10, 1),
				{ticks: 5, rps: 20, want: skip},
				idle(9, 5), {want: 3}, {want: 1},
			},
		},
		{
			name: "BurstsInsideTheWindowDoNotFlapReplicas", policy: policy(1, 5), start: 1,
			steps: []step{
				warm(1),
				{ticks: 2, rps: 20, want: skip},
				idle(9, 5), {rps: 40, want: 5},
				idle(9, 5), {rps: 40, want: 5},
				idle(9, 5), {rps: 40, want: 5},
				idle(30, 5), {want: 1, reason: ReasonStabilized},
			},
		},
		{
			name: "AlternatingBusyAndQuietTicksHoldASteadyCount", policy: policy(1, 5), start: 1,
			steps: func() []step {
				s := []step{warm(1), {rps: 10, want: 2}}
				for range 30 {
					s = append(s, step{want: 2}, step{rps: 10, want: 2})
				}
				return s
			}(),
		},
		{
			name: "ScalesToZeroAfterZeroDurationWithZeroLabel", policy: policy(1, 5, zeroAfter(time.Minute)), start: 1,
			steps: []step{idle(60, 1), {want: 0, reason: ReasonIdle}, idle(300, 0)},
		},
		{
			name: "NeverToZeroWithoutZeroLabel", policy: policy(1, 5), start: 1,
			steps: []step{idle(1000, 1)},
		},
		{
			name: "ZeroDurationCountsFromTheLastRequest", policy: policy(1, 5, zeroAfter(time.Minute)), start: 1,
			steps: []step{idle(40, 1), {rps: 1, want: 1}, idle(59, 1), {want: 0, reason: ReasonIdle}},
		},
		{
			name: "InFlightRequestKeepsFunctionAwake", policy: policy(1, 5, zeroAfter(time.Minute)), start: 1,
			steps: []step{{ticks: 300, inFlight: 1, want: 1}, idle(59, 1), {want: 0}},
		},
		{
			name: "IdleSkipsTheDownWindowStraightToZero", policy: policy(1, 5, zeroAfter(10*time.Second)), start: 1,
			steps: []step{{want: 1}, {ticks: 35, rps: 30, want: skip}, idle(9, 5), {want: 0, reason: ReasonIdle}},
		},
		{
			name: "NeverRaisedFromZeroWithoutRequests", policy: policy(1, 5, zeroAfter(time.Minute)), start: 0,
			steps: []step{idle(1000, 0)},
		},
		{
			name: "NeverRaisedFromZeroToMinWithoutRequests", policy: policy(2, 5), start: 0,
			steps: []step{idle(1000, 0)},
		},
		{
			name: "RequestsAtZeroGetTheProportionalCount", policy: policy(1, 5, zeroAfter(time.Minute)), start: 1,
			steps: []step{idle(60, 1), {want: 0}, idle(10, 0), {rps: 20, want: 3, reason: ReasonLoad}},
		},
		{
			name: "HeldAtZeroGetsAReplica", policy: policy(2, 5), start: 0,
			steps: []step{idle(40, 0), {inFlight: 1, held: 1, want: 2, reason: ReasonLoad}},
		},
		{
			name: "HeldRightAfterAManualZeroGetsAReplica", policy: policy(1, 5), start: 1,
			steps: []step{warm(1), {manual: n(0), want: 0}, {inFlight: 1, held: 1, want: 1, reason: ReasonLoad}},
		},
		{
			// Requests still finishing on the replicas a scale to 0 let go need no replica.
			name: "InFlightFinishingAfterAManualZeroDoesNotWake", policy: policy(1, 5), start: 1,
			steps: []step{warm(1), {ticks: 5, rps: 3, inFlight: 2, want: 1}, {manual: n(0), inFlight: 2, want: 0}, {ticks: 5, inFlight: 2, want: 0}, idle(300, 0)},
		},
		{
			// The tick after a scale to 0 counts requests started before it; they must
			// not undo it.
			name: "ManualZeroRightAfterTrafficIsNotFought", policy: policy(1, 5), start: 1,
			steps: []step{
				warm(1),
				{ticks: 10, rps: 20, want: skip},
				{manual: n(0), rps: 7, want: 0, external: true},
				idle(300, 0),
				{rps: 1, want: 1, reason: ReasonLoad},
			},
		},
		{
			name: "ManualScaleDownRightAfterTrafficIsNotFought", policy: policy(1, 5), start: 1,
			steps: []step{
				warm(1),
				{ticks: 10, rps: 20, want: skip},
				{manual: n(1), rps: 7, want: 1, external: true},
				idle(300, 1),
			},
		},
		{
			name: "ManualZeroRightAfterTrafficWithZeroLabelIsNotFought", policy: policy(1, 5, zeroAfter(time.Minute)), start: 1,
			steps: []step{
				warm(1),
				{ticks: 10, rps: 20, want: skip},
				{manual: n(0), rps: 7, want: 0, external: true},
				idle(300, 0),
			},
		},
		{
			name: "ShortRequestsRightAfterAManualZeroGetAReplica", policy: policy(1, 5, capacity(5)), start: 1,
			steps: []step{warm(1), {manual: n(0), want: 0}, {rps: 1, want: 1, reason: ReasonLoad}},
		},
		{
			name: "WakeFromZeroIsAcceptedAndHeld", policy: policy(1, 5, zeroAfter(10*time.Second)), start: 0,
			steps: []step{
				idle(40, 0),
				{manual: n(1), rps: 1, want: 1, external: true}, // the proxy woke it
				// Back to sleep after zero-duration without a request, not after the
				// longer down window: the wake restarted the idle clock.
				idle(9, 1), {want: 0, reason: ReasonIdle},
			},
		},
		{
			name: "ManualScaleUpIsHeldThroughTheWindow", policy: policy(1, 5), start: 1,
			steps: []step{
				warm(1),
				{manual: n(4), want: 4, external: true},
				idle(29, 4),
				{want: 1, reason: ReasonStabilized},
				idle(100, 1),
			},
		},
		{
			name: "ManualScaleDownIsHeldThroughTheWindow", policy: policy(1, 5), start: 1,
			steps: []step{
				warm(1),
				{ticks: 5, rps: 30, want: skip},
				idle(5, 5),
				{manual: n(2), want: 2, external: true}, // neither back up to 5 nor down to 1
				idle(29, 2),
				{want: 1, reason: ReasonStabilized},
			},
		},
		{
			name: "ManualScaleDownBelowTheLoadYieldsToLoad", policy: policy(1, 5), start: 1,
			steps: []step{
				warm(1),
				{rps: 12, want: 2},
				{ticks: 40, rps: 12, want: 3},
				// The tick of the change cannot tell the load before it from the load
				// after it; the next one can.
				{manual: n(1), rps: 12, want: 1, external: true},
				{rps: 12, want: 3, reason: ReasonLoad},
			},
		},
		{
			name: "ManualScaleToZeroStaysZeroUntilARequest", policy: policy(1, 5), start: 1,
			steps: []step{
				warm(1),
				{manual: n(0), want: 0, external: true},
				idle(500, 0),
				{rps: 1, want: 1, reason: ReasonLoad},
				idle(100, 1),
			},
		},
		{
			name: "ManualScaleToZeroOfMinTwoStaysZero", policy: policy(2, 5), start: 2,
			steps: []step{warm(2), {manual: n(0), want: 0}, idle(500, 0)},
		},
		{
			name: "ManualScaleAboveMaxIsHeldThenFollowsLoad", policy: policy(1, 3), start: 1,
			steps: []step{
				warm(1),
				{manual: n(8), ticks: 30, rps: 100, want: 8},
				{rps: 100, want: 3, reason: ReasonStabilized},
			},
		},
		{
			name: "ManualScaleBelowMinIsHeldThenRaisedToMin", policy: policy(2, 5), start: 2,
			steps: []step{
				warm(2),
				{manual: n(1), ticks: 30, want: 1},
				{want: 2, reason: ReasonMin},
				idle(100, 2),
			},
		},
		{
			name: "LoadAboveAManualCountScalesUpInsideTheWindow", policy: policy(1, 5), start: 1,
			steps: []step{
				warm(1),
				{manual: n(2), want: 2},
				{rps: 40, want: 5, reason: ReasonLoad},
			},
		},
		{
			name: "CapacityScalesOnInFlight", policy: policy(1, 10, capacity(2)), start: 1,
			steps: []step{
				warm(1),
				{inFlight: 7, want: 4, reason: ReasonLoad},
				{ticks: 29, inFlight: 1, want: 4},
				{inFlight: 1, want: 1, reason: ReasonStabilized},
			},
		},
		{
			name: "CapacityIgnoresTheRequestRate", policy: policy(1, 10, capacity(2)), start: 1,
			steps: []step{warm(1), {ticks: 60, rps: 1000, want: 1}},
		},
		{
			name: "CounterResetIsNeitherABurstNorALoss", policy: policy(1, 5), start: 1,
			steps: []step{
				warm(1),
				{ticks: 30, rps: 12, want: skip},
				{reset: true, ticks: 30, rps: 12, want: 3},
			},
		},
		{
			name: "CounterResetToZeroIsQuiet", policy: policy(1, 5), start: 1,
			steps: []step{{ticks: 31, rps: 2, want: 1}, {reset: true, ticks: 60, want: 1}},
		},
		{
			name: "CounterResetCountsAsActivity", policy: policy(1, 5, zeroAfter(time.Minute)), start: 1,
			steps: []step{{ticks: 31, rps: 2, want: 1}, idle(50, 1), {reset: true, rps: 1, want: 1}, idle(59, 1), {want: 0}},
		},
		{
			name: "MinEqualMaxDisablesAutoscaling", policy: policy(2, 2), start: 2,
			steps: []step{{ticks: 100, rps: 100, want: 2}, idle(300, 2)},
		},
		{
			name: "MinEqualMaxLeavesAManualCountAlone", policy: policy(2, 2), start: 2,
			steps: []step{
				warm(2),
				{manual: n(5), ticks: 300, want: 5, external: true},
				{manual: n(0), ticks: 300, want: 0},
				{manual: n(1), ticks: 300, rps: 50, want: 1},
			},
		},
		{
			name: "MinEqualMaxWithZeroLabelStillIdlesToZero", policy: policy(2, 2, zeroAfter(time.Minute)), start: 2,
			steps: []step{{ticks: 60, want: 2}, {want: 0, reason: ReasonIdle}, {rps: 1, want: 2}},
		},
		{
			name: "ZeroValuePolicyDoesNotPanic", policy: config.ScalePolicy{Max: 3}, start: 1,
			steps: []step{warm(1), {rps: 5, want: 1}, {rps: 5, want: 2}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &driver{p: tc.policy, cfg: tc.cfg, current: tc.start, requests: tc.requests,
				now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			tick := 0
			for i, s := range tc.steps {
				if s.manual != nil {
					d.current = *s.manual
				}
				if s.reset {
					d.requests = 0
				}
				for j := range max(s.ticks, 1) {
					tick++
					dec := d.tick(s.rps, s.inFlight, s.held)
					where := fmt.Sprintf("step %d, tick %d (t=%ds)", i, j, tick)
					if s.want != skip && dec.Replicas != s.want {
						t.Fatalf("%s: replicas %d, want %d (reason %q)", where, dec.Replicas, s.want, dec.Reason)
					}
					if j == 0 && s.external && !dec.External {
						t.Errorf("%s: change to %d not reported as external", where, *s.manual)
					}
					if j == max(s.ticks, 1)-1 && s.reason != "" && dec.Reason != s.reason {
						t.Errorf("%s: reason %q, want %q", where, dec.Reason, s.reason)
					}
				}
			}
		})
	}
}

// The down window is a sliding maximum; its memory must not grow with the tick rate.
func TestDecideMemoryIsBounded(t *testing.T) {
	d := &driver{p: policy(1, 5), current: 1, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	for i := range 10000 {
		d.tick(uint64(i%40), i%3, 0)
	}
	if len(d.st.window) > d.p.Max+1 {
		t.Errorf("window holds %d entries, want at most %d", len(d.st.window), d.p.Max+1)
	}
	if len(d.st.samples) > rateTicks {
		t.Errorf("rate history holds %d samples, want at most %d", len(d.st.samples), rateTicks)
	}
}

// A clock that stalls or steps back must not divide by zero or invent load.
func TestDecideClockStallKeepsRate(t *testing.T) {
	p := policy(1, 5)
	var st State
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	Decide(p, &st, Observation{Requests: 0}, 1, t0, Settings{})
	Decide(p, &st, Observation{Requests: 20}, 1, t0.Add(time.Second), Settings{})
	for _, at := range []time.Time{t0.Add(time.Second), t0} {
		d := Decide(p, &st, Observation{Requests: 20}, 5, at, Settings{})
		if d.Replicas != 5 || st.RPS() != 20 {
			t.Errorf("at %v: replicas %d, rps %v; want 5 and 20", at.Sub(t0), d.Replicas, st.RPS())
		}
	}
}

// Requests counted after a re-creation are this tick's requests: the rate carries on.
func TestDecideCounterResetKeepsTheRate(t *testing.T) {
	p := policy(1, 5)
	var st State
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	current := 1
	for i, n := range []uint64{1000, 1012, 1024, 12, 24} {
		current = Decide(p, &st, Observation{Requests: n}, current, t0.Add(time.Duration(i)*time.Second), Settings{}).Replicas
	}
	if st.RPS() != 12 {
		t.Errorf("rps after a counter reset = %v, want 12", st.RPS())
	}
}
