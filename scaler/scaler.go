// Package scaler decides how many replicas each function should have and asks for them.
//
// It owns the scaling rule (Decide, a pure function of policy, observed load, current
// count, time and the per-function State it is handed) and the loop that applies it once
// a tick (Scaler). It must not touch sockets or processes, nor read clocks or counters
// itself: the clock, the counters (Source) and the replica owner (Target) are injected,
// which is what lets the rule be tested tick by tick without sleeping.
//
// It never raises a function from zero on its own (the proxy wakes it when a request
// arrives) and never fights a count set through the API: such a count is not lowered
// before a stabilization window has passed, and a count of 0 stays 0 until a request
// arrives.
//
// It also keeps, per function, a bounded history of what it saw at each tick and of every
// change of the count (History), for the API and the web UI to show scaling as it
// happens. The history costs a few fixed-size rings written once a tick, nothing on the
// request path.
package scaler

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"faasd/config"
)

// Function is a function as the scaler sees it.
type Function struct {
	Name     string
	Policy   config.ScalePolicy
	Replicas int // the desired count as the Target has it now
	Ready    int // replicas ready now; for the history only
}

// Target owns the replicas: the daemon fits the supervisor to it.
type Target interface {
	Functions() []Function
	// Scale sets the desired count. It should record the count and return: draining
	// replicas that go away happens in the background, or one slow drain would delay
	// the decisions for every other function.
	Scale(name string, replicas int) error
}

// Source reports the load of a function: the daemon fits the proxy's counters to it. An
// unknown function observes as the zero Observation.
type Source interface {
	Observe(name string) Observation
}

// Status is what the scaler last saw and decided for one function.
type Status struct {
	Current   int       // the count the function had at the last tick
	Desired   int       // the count the scaler decided at the last tick
	RPS       float64   // smoothed requests per second
	InFlight  int       // requests in flight at the last tick
	DecidedAt time.Time // the last tick
	ChangedAt time.Time // when the count last changed, by the scaler or from outside; zero if never
	Reason    Reason    // why it last changed
}

// Scaler runs Decide for every function of its Target once a tick.
type Scaler struct {
	target Target
	source Source
	cfg    Settings
	now    func() time.Time
	log    *slog.Logger

	stepMu sync.Mutex        // serializes Step, which owns states
	states map[string]*State // per function, forgotten when the function goes
	tick   uint64            // the number of the Step running or last run

	mu      sync.Mutex // guards records and done, read by Status and History from other goroutines
	records map[string]*record
	done    uint64 // the last tick whose samples are all recorded
}

// record is what the scaler shows of one function: its last status and its history.
type record struct {
	status Status
	hist   history
}

// New returns a Scaler over t and s. A zero field of cfg takes its default; a nil now
// is time.Now and a nil logger discards.
func New(t Target, s Source, cfg Settings, now func() time.Time, logger *slog.Logger) *Scaler {
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Scaler{
		target:  t,
		source:  s,
		cfg:     cfg.withDefaults(),
		now:     now,
		log:     logger,
		states:  make(map[string]*State),
		records: make(map[string]*record),
	}
}

// Run decides at once and then every cfg.Interval until ctx is done; it then returns
// nil, since stopping is its normal end.
func (s *Scaler) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		if ctx.Err() != nil {
			return nil
		}
		s.Step(s.now())
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Step runs one tick at now: it decides for every function the Target has and applies
// the changes. Run calls it; tests call it directly with a fake clock.
func (s *Scaler) Step(now time.Time) {
	s.stepMu.Lock()
	defer s.stepMu.Unlock()

	s.tick++
	fns := s.target.Functions()
	live := make(map[string]bool, len(fns))
	for _, fn := range fns {
		live[fn.Name] = true
		s.step(fn, now)
	}
	for name := range s.states {
		if !live[name] {
			delete(s.states, name)
		}
	}
	s.mu.Lock()
	for name := range s.records {
		if !live[name] {
			delete(s.records, name)
		}
	}
	s.done = s.tick
	s.mu.Unlock()
}

func (s *Scaler) step(fn Function, now time.Time) {
	st := s.states[fn.Name]
	if st == nil {
		st = new(State)
		s.states[fn.Name] = st
	}
	obs := s.source.Observe(fn.Name)
	lastSet := st.set
	d := Decide(fn.Policy, st, obs, fn.Replicas, now, s.cfg)

	s.mu.Lock()
	rec := s.records[fn.Name]
	if rec == nil {
		rec = new(record)
		s.records[fn.Name] = rec
	}
	stat := rec.status
	woke := rec.hist.woke(obs)
	s.mu.Unlock()
	stat.Current, stat.Desired = fn.Replicas, d.Replicas
	stat.RPS, stat.InFlight, stat.DecidedAt = st.RPS(), obs.InFlight, now
	var changes []Change

	if d.External {
		reason := ReasonExternal
		if lastSet == 0 && woke {
			reason = ReasonWake
		}
		s.log.Info("replicas set outside the scaler; holding them",
			"function", fn.Name, "from", lastSet, "to", fn.Replicas, "reason", reason)
		stat.ChangedAt, stat.Reason = now, ReasonExternal
		changes = append(changes, Change{Seq: s.tick, At: now, From: lastSet, To: fn.Replicas, Reason: reason})
	}
	if d.Replicas != fn.Replicas {
		if err := s.target.Scale(fn.Name, d.Replicas); err != nil {
			// The count did not change: remember the one we saw, or the next tick would
			// take it for a manual scale and hold it.
			st.set = fn.Replicas
			stat.Desired = fn.Replicas
			s.log.Warn("scale failed", "function", fn.Name, "from", fn.Replicas,
				"to", d.Replicas, "reason", d.Reason, "err", err)
		} else {
			s.log.Info("scaled", "function", fn.Name, "from", fn.Replicas,
				"to", d.Replicas, "reason", d.Reason)
			stat.ChangedAt, stat.Reason = now, d.Reason
			changes = append(changes, Change{Seq: s.tick, At: now, From: fn.Replicas, To: d.Replicas, Reason: d.Reason})
		}
	}

	s.mu.Lock()
	rec.status = stat
	for _, c := range changes {
		rec.hist.changes.push(c, changesLen)
	}
	rec.hist.record(Sample{Seq: s.tick, At: now, RPS: stat.RPS, InFlight: obs.InFlight,
		Desired: stat.Desired, Ready: fn.Ready}, obs)
	s.mu.Unlock()
}

// Status reports what the scaler last saw and decided for the function, and false if it
// has not seen the function (yet, or any more).
func (s *Scaler) Status(name string) (Status, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.records[name]
	if !ok {
		return Status{}, false
	}
	return rec.status, true
}

// History returns the function's samples and changes after the tick since (0: all it
// keeps), and false if the scaler has not seen the function (yet, or any more): then
// only Interval and Seq are set.
func (s *Scaler) History(name string, since uint64) (History, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Up to the last whole tick: a reader that comes back with since = Seq must not miss
	// a sample of the tick being recorded now.
	h := History{Interval: s.cfg.Interval, Seq: s.done}
	rec, ok := s.records[name]
	if !ok {
		return h, false
	}
	h.Samples, h.Changes = rec.hist.between(since, s.done)
	return h, true
}
