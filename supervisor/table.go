package supervisor

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// control is how the daemon reaches the goroutine of one function or service without ever
// waiting for it: the spec it should run (the latest wins) with a kick when it changes,
// quit, and the state it last published. A busy goroutine never holds up a caller.
type control[P, S any] struct {
	name  string
	kick  chan struct{} // one slot: a pending kick reads the latest spec
	quit  chan struct{} // closed to stop
	done  chan struct{} // closed by the goroutine once it has stopped
	state atomic.Pointer[S]

	mu   sync.Mutex
	want P
	once sync.Once
}

func newControl[P, S any](name string, spec P) *control[P, S] {
	return &control[P, S]{name: name, kick: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{}), want: spec}
}

// spec is the spec the goroutine should run.
func (c *control[P, S]) spec() P {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.want
}

// set hands the goroutine a new spec.
func (c *control[P, S]) set(spec P) {
	c.mu.Lock()
	c.want = spec
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default: // a kick is pending and will read the latest spec
	}
}

// stop tells the goroutine to stop; done says when it has.
func (c *control[P, S]) stop() { c.once.Do(func() { close(c.quit) }) }

// publish makes st the state that Status and Statuses return.
func (c *control[P, S]) publish(st S) { c.state.Store(&st) }

// specType is a function's or a service's spec.
type specType[P any] interface{ Equal(P) bool }

// unit is a function or a service as the table keeps it.
type unit[P, S any] interface{ ctl() *control[P, S] }

// table is the bookkeeping that functions and services share: the units by name, the
// removed ones until they have stopped, and the output of each, which outlives it for
// keepLogs so that a removed one's logs stay readable a while.
type table[P specType[P], S any, U unit[P, S]] struct {
	kind     string // "function" or "service", also the key of the log attribute
	log      *slog.Logger
	lines    int           // kept per unit
	bytes    int           // of text kept per unit
	keepLogs time.Duration // after a removed unit has stopped; default keepRemovedLogs
	// start starts a new unit. after is closed once the last removed unit of the same
	// name has stopped (nil: there was none).
	start func(spec P, logs *Logs, after <-chan struct{}) U
	// changed is called, with the table locked, after every change of the set of units.
	changed func(units map[string]U)

	mu      sync.Mutex
	units   map[string]U
	gone    []U // removed, maybe still stopping
	logs    map[string]*Logs
	stopped chan struct{} // closed by stop
}

func (t *table[P, S, U]) init() {
	t.units, t.logs, t.stopped = map[string]U{}, map[string]*Logs{}, make(chan struct{})
	if t.changed == nil {
		t.changed = func(map[string]U) {}
	}
	if t.keepLogs == 0 {
		t.keepLogs = keepRemovedLogs
	}
}

// apply makes the units match specs: new ones start, removed ones are told to stop,
// changed ones are handed their new spec. It never waits for a unit.
func (t *table[P, S, U]) apply(specs map[string]P) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for name, u := range t.units {
		if _, ok := specs[name]; !ok {
			t.log.Info(t.kind+" removed", t.kind, name)
			u.ctl().stop()
			t.gone = append(t.gone, u)
			delete(t.units, name)
			go t.forgetLogs(name, u, t.logs[name])
		}
	}
	t.gone = slices.DeleteFunc(t.gone, func(u U) bool { return isClosed(u.ctl().done) })
	for _, name := range slices.Sorted(maps.Keys(specs)) {
		spec := specs[name]
		if u, ok := t.units[name]; ok {
			if c := u.ctl(); !c.spec().Equal(spec) {
				c.set(spec)
			}
			continue
		}
		logs := t.logs[name]
		if logs == nil {
			logs = newLogs(t.lines, t.bytes)
			t.logs[name] = logs
		}
		t.log.Info(t.kind+" added", t.kind, name)
		t.units[name] = t.start(spec, logs, t.goneDone(name))
	}
	t.changed(t.units)
}

// forgetLogs frees the output of a removed unit keepLogs after it has stopped, unless a
// unit of the same name has come back and writes to it again.
func (t *table[P, S, U]) forgetLogs(name string, u U, logs *Logs) {
	<-u.ctl().done
	timer := time.NewTimer(t.keepLogs)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-t.stopped:
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, back := t.units[name]; !back && t.logs[name] == logs {
		delete(t.logs, name)
	}
}

// goneDone returns a channel closed once the last removed unit of a name has stopped, or
// nil when there is none. A unit that waits for it before it ends (as a service does)
// makes it stand for every earlier one too.
func (t *table[P, S, U]) goneDone(name string) <-chan struct{} {
	for _, u := range slices.Backward(t.gone) {
		if u.ctl().name == name {
			return u.ctl().done
		}
	}
	return nil
}

func (t *table[P, S, U]) get(name string) (U, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	u, ok := t.units[name]
	return u, ok
}

// status returns the state a unit last published.
func (t *table[P, S, U]) status(name string) (S, bool) {
	u, ok := t.get(name)
	if !ok {
		var zero S
		return zero, false
	}
	return *u.ctl().state.Load(), true
}

// statuses returns the state of every unit, sorted by name.
func (t *table[P, S, U]) statuses() []S {
	t.mu.Lock()
	units := make([]U, 0, len(t.units))
	for _, name := range slices.Sorted(maps.Keys(t.units)) {
		units = append(units, t.units[name])
	}
	t.mu.Unlock()
	out := make([]S, 0, len(units))
	for _, u := range units {
		out = append(out, *u.ctl().state.Load())
	}
	return out
}

// logsOf returns the output buffer of a unit, also after it was removed.
func (t *table[P, S, U]) logsOf(name string) (*Logs, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	l, ok := t.logs[name]
	return l, ok
}

// stop tells every unit to stop and waits until they have. When ctx ends first, every
// process they have left is killed at once.
func (t *table[P, S, U]) stop(ctx context.Context, procs *processes) error {
	t.mu.Lock()
	all := append(slices.Collect(maps.Values(t.units)), t.gone...)
	for _, u := range all {
		u.ctl().stop()
	}
	if !isClosed(t.stopped) {
		close(t.stopped)
	}
	t.units, t.gone = map[string]U{}, nil
	t.changed(t.units)
	t.mu.Unlock()
	done := make(chan struct{})
	go func() {
		for _, u := range all {
			<-u.ctl().done
		}
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		t.log.Warn("stop deadline: killing every " + t.kind + "'s processes")
		procs.killAll()
		<-done
		return ctx.Err()
	}
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
