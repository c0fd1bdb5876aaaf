package scaler

import (
	"math"
	"time"

	"faasd/config"
	"faasd/internal/latency"
)

// Defaults for the zero fields of Settings.
const (
	DefaultInterval = time.Second
	// DefaultDownWindow is the scale-down stabilization window. It has to stay well under
	// 60 s: OpenFaaS's certifier wants a function back at min within 60 s of its load
	// ending, and the rate smoothing and the tick come on top of the window.
	DefaultDownWindow = 30 * time.Second
)

// rateTicks is how many ticks the request rate is averaged over. Two ticks halve a single
// noisy tick, yet the second tick of sustained load already reports the full rate, so a
// scale-up never waits more than two ticks.
const rateTicks = 2

// Settings tune the scaler as a whole; a zero field takes its default.
type Settings struct {
	Interval   time.Duration // how often the loop decides; DefaultInterval
	DownWindow time.Duration // scale-down stabilization window; DefaultDownWindow
}

func (c Settings) withDefaults() Settings {
	if c.Interval <= 0 {
		c.Interval = DefaultInterval
	}
	if c.DownWindow <= 0 {
		c.DownWindow = DefaultDownWindow
	}
	return c
}

// Observation is what the proxy's counters say about one function at one tick.
type Observation struct {
	// Requests is the cumulative count of requests started. It only grows, except that it
	// starts again from 0 when the function is re-created.
	Requests uint64
	// InFlight is the number of requests being served (or held while waking) right now.
	InFlight int
	// Held is the part of InFlight waiting for a replica: at zero, the only requests
	// that need one. The others may be finishing on replicas that are leaving.
	Held int

	// For the history only; the rule does not read them.
	ColdStarts uint64            // cumulative count of requests that waited for a replica
	Latency    *latency.Snapshot // cumulative durations of finished requests; nil if not measured
}

// Reason says why a decision changed the replica count.
type Reason string

const (
	ReasonNone       Reason = ""           // no change
	ReasonLoad       Reason = "load"       // load calls for more replicas
	ReasonMin        Reason = "min"        // raised to min after a count below it was held for the window
	ReasonStabilized Reason = "stabilized" // load has been lower for the whole down window
	ReasonIdle       Reason = "idle"       // zero label set and no request for zero-duration
	ReasonExternal   Reason = "external"   // set outside the scaler (API, CLI, wake from zero); accepted
	// ReasonWake is an external change from zero that a request caused: the proxy woke
	// the function. Decide reports it as external; the history tells the two apart.
	ReasonWake Reason = "wake"
)

// Decision is the outcome of one tick for one function.
type Decision struct {
	Replicas int    // the desired count; equal to current when nothing changes
	Reason   Reason // why Replicas differs from current; ReasonNone when it does not
	// External reports that current was not what the scaler last decided: someone else
	// (the API, the CLI, a wake from zero) set it, and it became the new baseline.
	External bool
}

// State is the scaler's memory of one function between ticks. The zero value is a
// function never seen before. A State belongs to one function; it is not safe for
// concurrent use.
type State struct {
	seen       bool
	set        int       // the count the scaler last decided, to tell its own changes from others'
	since      time.Time // start of the current hold: first sight or the last external change
	lastActive time.Time // last tick with a request started or in flight
	raw        uint64    // the source's counter at the last tick
	total      uint64    // requests counted by this State, carried across counter resets
	samples    []sample  // the last rateTicks (time, total) pairs, oldest first
	rate       float64   // smoothed requests per second
	window     []rec     // recommendations within the down window, as a monotonic max-queue
}

type sample struct {
	at    time.Time
	total uint64
}

type rec struct {
	at time.Time
	n  int
}

// RPS is the smoothed request rate seen at the last tick.
func (st *State) RPS() float64 { return st.rate }

// Decide applies the scaling rule to one function at one tick and records what it needs
// to remember in st. current is the function's desired count as the supervisor has it
// now. The rule:
//
//   - load is the request rate averaged over the last two ticks (type rps) or the
//     requests in flight (type capacity); the proportional count is
//     ceil(load / (Target × TargetProportion)), clamped to [max(Min, 1), Max].
//   - Up at once. Down only to the highest count recommended during the last DownWindow,
//     as the Kubernetes HPA and OpenFaaS Pro do, so load that comes and goes inside the
//     window does not make replicas come and go.
//   - To zero only with the zero label, after ZeroDuration without a request started or
//     in flight. Never from zero without requests: waking is the proxy's job.
//   - A count the scaler did not set (API, CLI, wake) is accepted as the new baseline and
//     held, even outside [Min, Max], for one DownWindow: not lowered, not raised to Min;
//     only load above it raises it meanwhile, as serving the load wins (Max is the knob
//     for fewer replicas under load). After the window the rule above applies again, so
//     a count above Max comes down to what the load needs and one below Min goes up to
//     Min. A count of 0 stays 0 until requests arrive. The count found at first sight (a
//     new function, a daemon restart) is held the same way, since nothing is known of
//     its recent load.
//   - A count lowered from outside forgets the load measured before it: the rate starts
//     again from that tick, and the requests of that tick count for nothing, since most
//     of them were served before the count changed and a request that came after it
//     woke the function through the proxy anyway. Otherwise a scale to 0 right after
//     some traffic would be undone a tick later by the rate of that traffic.
//   - At zero, only requests started since the last tick or held for a replica count;
//     requests still finishing on the replicas a scale to 0 let go do not.
//   - Min == Max without the zero label switches autoscaling off: current is returned
//     unchanged, even when a manual count lies outside [Min, Max].
func Decide(p config.ScalePolicy, st *State, obs Observation, current int, now time.Time, cfg Settings) Decision {
	cfg = cfg.withDefaults()
	disabled := !p.Autoscaled()
	p = sane(p)
	current = max(current, 0)

	first := !st.seen
	started := st.observe(obs, now)
	st.seen = true
	d := Decision{Replicas: current, External: !first && current != st.set}
	lowered := d.External && current < st.set
	if first || d.External || disabled {
		// While scaling is off the baseline is renewed every tick, so that switching it on
		// later starts with a full window instead of stale memory.
		st.rebase(now, current)
	}
	if lowered {
		st.forgetLoad()
		started = false
	}
	active := started || (obs.InFlight > 0 && !lowered)
	if active {
		st.lastActive = now
	}
	if disabled {
		return d
	}

	load := st.rate
	if p.Type == config.ScaleCapacity && !lowered {
		load = float64(max(obs.InFlight, 0))
	}
	need := replicasFor(load, p)
	if active {
		// A request started or running needs a replica, however low the rate.
		need = max(need, 1)
	}
	idle := p.Zero && !active && now.Sub(st.lastActive) >= p.ZeroDuration
	r := min(max(need, p.Min, 1), p.Max)
	if idle {
		r = 0
	}
	st.push(now, r, cfg.DownWindow)

	switch {
	case current == 0 && !started && obs.Held <= 0:
		// Only a request wakes a function at zero, through the proxy; the scaler must not,
		// or a manual scale to 0 would be fought.
	case idle:
		// zero-duration is itself a stabilization window, and usually a longer one:
		// waiting a DownWindow more would only delay what the user asked for. The idle
		// clock restarts with every count set from outside (a wake, a manual scale), so
		// this never undoes one before zero-duration without a request has passed.
		d.Replicas, d.Reason = 0, ReasonIdle
	case now.Before(st.since.Add(cfg.DownWindow)):
		// Holding a baseline someone else set: no scaling down, and no raising to min,
		// only load may push it up.
		if want := min(need, p.Max); want > current {
			d.Replicas, d.Reason = want, ReasonLoad
		}
	case r > current:
		d.Replicas, d.Reason = r, ReasonLoad
		if need < r && current > 0 {
			d.Reason = ReasonMin
		}
	default:
		if m := min(st.windowMax(), p.Max); m < current {
			d.Replicas, d.Reason = m, ReasonStabilized
		}
	}
	st.set = d.Replicas
	return d
}

// observe takes in this tick's counters and reports whether a request started since the
// last tick.
func (st *State) observe(obs Observation, now time.Time) bool {
	var delta uint64
	switch {
	case !st.seen:
		// The first value of the counter is history, not load.
	case obs.Requests >= st.raw:
		delta = obs.Requests - st.raw
	default:
		// The counter went back: the function was re-created. Whatever it counts now
		// started after the last tick, so it is this tick's delta (Prometheus's rate()
		// reads resets the same way).
		delta = obs.Requests
	}
	st.raw = obs.Requests
	st.total += delta

	if len(st.samples) > 0 {
		oldest := st.samples[0]
		if el := now.Sub(oldest.at); el > 0 {
			st.rate = float64(st.total-oldest.total) / el.Seconds()
		} else {
			// The clock did not move forward: keep the last rate, restart the history.
			st.samples = st.samples[:0]
		}
	}
	if len(st.samples) == rateTicks {
		copy(st.samples, st.samples[1:])
		st.samples = st.samples[:rateTicks-1]
	}
	st.samples = append(st.samples, sample{at: now, total: st.total})
	return delta > 0
}

// forgetLoad drops the rate measured so far: the next tick's rate counts only the
// requests started after this one.
func (st *State) forgetLoad() {
	st.samples = append(st.samples[:0], st.samples[len(st.samples)-1])
	st.rate = 0
}

// rebase makes current the baseline: it is held for a window, its recommendations start
// afresh, and the idle clock restarts, so a function just scaled by hand is not idled
// the moment its hold ends.
func (st *State) rebase(now time.Time, current int) {
	st.set = current
	st.since = now
	st.lastActive = now
	st.window = st.window[:0]
}

// push records a recommendation and forgets those older than the window. The queue keeps
// only entries that are larger than every later one, so its head is the window's maximum
// and its length is bounded by the number of distinct counts, whatever the tick rate.
func (st *State) push(now time.Time, n int, window time.Duration) {
	for len(st.window) > 0 && st.window[len(st.window)-1].n <= n {
		st.window = st.window[:len(st.window)-1]
	}
	st.window = append(st.window, rec{at: now, n: n})
	cutoff := now.Add(-window)
	drop := 0
	for drop < len(st.window)-1 && !st.window[drop].at.After(cutoff) {
		drop++
	}
	st.window = append(st.window[:0], st.window[drop:]...)
}

// windowMax is the highest recommendation within the window.
func (st *State) windowMax() int {
	if len(st.window) == 0 {
		return 0
	}
	return st.window[0].n
}

// replicasFor is the proportional count, capped at p.Max.
func replicasFor(load float64, p config.ScalePolicy) int {
	if !(load > 0) {
		return 0
	}
	// The tolerance keeps a rate measured as 9.000000001 req/s against 4.5 per replica
	// from asking for a third replica because of float noise.
	x := math.Ceil(load/(p.Target*p.TargetProportion) - 1e-9)
	if x >= float64(p.Max) {
		return p.Max
	}
	return max(int(x), 0)
}

// sane guards the arithmetic against a policy that skipped config's validation (a zero
// value, a hand-built struct): it never divides by zero nor clamps into an empty range.
func sane(p config.ScalePolicy) config.ScalePolicy {
	d := config.DefaultScalePolicy
	if !(p.Target > 0) || math.IsInf(p.Target, 0) {
		p.Target = d.Target
	}
	if !(p.TargetProportion > 0 && p.TargetProportion <= 1) {
		p.TargetProportion = d.TargetProportion
	}
	if p.ZeroDuration <= 0 {
		p.ZeroDuration = d.ZeroDuration
	}
	p.Min = max(p.Min, 0)
	p.Max = max(p.Max, p.Min, 1)
	return p
}
