package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"faasd/cgroup"
	"faasd/config"
)

// launch is everything needed to start one program.
type launch struct {
	argv    []string
	dir     string      // working directory
	env     []string    // the whole environment (environ.go)
	creds   credentials // the account it runs as
	tmp     string      // mounted on /tmp in a mount namespace of its own; "": the host's /tmp
	secrets string      // with tmp: mounted read-only on SecretsMount
	name    groupName   // whose process it is; names its group
	limits  config.Limits
	output  output // takes its stdout and stderr, line by line
	log     *slog.Logger
}

// groupName says whose process a launch starts, and names its group: a replica of a
// function, or a run of a service. An empty unit is a process of the supervisor's own
// (a probe), which gets a process group.
type groupName struct {
	kind     cgroup.Kind // cgroup.Functions or cgroup.Services
	unit     string      // the function or service
	instance string      // the replica's id; the service's attempt, "init" or "check"
}

func (n groupName) String() string { return path.Join(string(n.kind), n.unit, n.instance) }

// starter starts programs. The daemon forks them (forkStarter); tests start pretend ones,
// so that the lifecycle's rules run without processes.
type starter interface {
	start(l *launch) (running, error)
}

// running is a program just started, as a starter hands it over.
type running struct {
	pid    int
	group  group
	wait   func() error    // returns once the program has exited, with its exit status
	output <-chan struct{} // closed once its output has been read to the end
}

// A process is a program we started, from its start to the cleanup after its exit.
// Replicas and services are both built from it:
//
//   - it runs in a group (group.go) with everything it starts;
//   - stop asks the whole group to end with SIGTERM, and kills it after a grace period;
//   - kill ends the whole group at once with SIGKILL;
//   - whenever the program exits, whatever it left in its group is killed, its output is
//     read to the end and the group removed; only then does exited close. ended closes
//     as soon as the program has exited, before that cleanup, for whoever must stop
//     relying on it at once. When the kernel's OOM killer ended it, its exit status says
//     so (outOfMemoryError).
type process struct {
	pid    int
	name   groupName
	group  group
	memory config.Memory // its memory limit, for the report of an OOM kill
	log    *slog.Logger
	stderr *lastLine // what the program said last on stderr
	ended  chan struct{}
	exited chan struct{}
	err    error // the exit status, once ended is closed
	// killed is set before the lifecycle sends SIGKILL: an end by SIGKILL is then its
	// own doing, not the OOM killer's.
	killed atomic.Bool
}

// outOfMemoryError is the exit status of a program that the kernel's OOM killer ended,
// in the words the status of a function or service shows.
type outOfMemoryError struct {
	limit config.Memory // zero: the group had no limit, the host ran out
}

func (e *outOfMemoryError) Error() string {
	if e.limit.IsZero() {
		return "out of memory"
	}
	return fmt.Sprintf("out of memory (limit %s)", e.limit)
}

// isOutOfMemory reports whether err says that the OOM killer ended a program.
func isOutOfMemory(err error) bool {
	var oom *outOfMemoryError
	return errors.As(err, &oom)
}

// outputGrace bounds the cleanup after an exit. A child that left the group may still
// hold the output pipes; its output is then cut off rather than holding up a stop.
const outputGrace = 2 * time.Second

// reap waits for the program's exit and cleans up after it.
func (p *process) reap(r running, gone func()) {
	defer close(p.exited)
	defer gone()
	p.err = r.wait()
	// Read before the group goes: its OOM count goes with it.
	if killedBy(p.err, syscall.SIGKILL) && !p.killed.Load() && p.group.oomKills() > 0 {
		p.err = &outOfMemoryError{limit: p.memory}
		p.log.Warn("out of memory: the kernel killed the program", "pid", p.pid, "limit", p.memory.String())
	}
	close(p.ended)
	p.group.signal(syscall.SIGKILL)
	ctx, cancel := context.WithTimeout(context.Background(), outputGrace)
	defer cancel()
	if err := p.group.waitEmpty(ctx); err != nil {
		p.log.Warn("processes left after exit", "pid", p.pid, "err", err)
	}
	select {
	case <-r.output:
	case <-ctx.Done():
	}
	p.group.remove()
}

// stop asks the program and everything it started to end, and kills them after grace.
func (p *process) stop(grace time.Duration) {
	p.group.signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.exited:
	case <-t.C:
		p.log.Warn("stop grace over: killing", "pid", p.pid)
		p.kill()
	}
}

// kill ends the program and everything it started at once.
func (p *process) kill() {
	p.killed.Store(true)
	p.group.signal(syscall.SIGKILL)
	<-p.exited
}

// exitError says why a program that was meant to keep running has ended. A program that
// gives up usually says why on stderr just before (a missing program, a port in use, a
// panic), so a failed exit carries the last line it wrote there.
func (p *process) exitError() error {
	switch {
	case p.err == nil:
		return errors.New("process exited: exited with status 0")
	case isOutOfMemory(p.err):
		return p.err
	}
	if said := p.stderr.String(); said != "" {
		return fmt.Errorf("process exited: %w: %s", p.err, said)
	}
	return fmt.Errorf("process exited: %w", p.err)
}

// lastLine passes a program's output on and keeps the last line it wrote on stderr, cut
// to a length that fits in a status.
type lastLine struct {
	output
	mu   sync.Mutex
	text string
}

const maxLastLine = 240

func (l *lastLine) line(stream, text string) {
	l.output.line(stream, text)
	if stream != "stderr" || strings.TrimSpace(text) == "" {
		return
	}
	if len(text) > maxLastLine {
		text = text[:maxLastLine] + "…"
	}
	l.mu.Lock()
	l.text = text
	l.mu.Unlock()
}

func (l *lastLine) String() string {
	if l == nil {
		return ""
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.text
}

// killedBy reports whether an exit status (an *exec.ExitError) is the end by a signal.
func killedBy(err error, sig syscall.Signal) bool {
	var exit interface{ Sys() any }
	if !errors.As(err, &exit) {
		return false
	}
	ws, ok := exit.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == sig
}

// processes starts programs and keeps the live ones, so that a stop whose time has run
// out can kill every one that is left.
type processes struct {
	starter starter

	mu      sync.Mutex
	live    map[*process]struct{}
	killing bool
}

func newProcesses(st starter) *processes {
	return &processes{starter: st, live: map[*process]struct{}{}}
}

func (ps *processes) start(l *launch) (*process, error) {
	if l.log == nil {
		l.log = discard
	}
	stderr := &lastLine{output: l.output}
	if l.output != nil {
		l.output = stderr
	}
	r, err := ps.starter.start(l)
	if err != nil {
		return nil, err
	}
	p := &process{pid: r.pid, name: l.name, group: r.group, memory: l.limits.Memory, log: l.log, stderr: stderr, ended: make(chan struct{}), exited: make(chan struct{})}
	ps.mu.Lock()
	ps.live[p] = struct{}{}
	killing := ps.killing
	ps.mu.Unlock()
	if killing {
		p.killed.Store(true)
		p.group.signal(syscall.SIGKILL)
	}
	go p.reap(r, func() {
		ps.mu.Lock()
		delete(ps.live, p)
		ps.mu.Unlock()
	})
	return p, nil
}

// run starts a program and waits for its end; when ctx ends first, it is killed.
func (ps *processes) run(ctx context.Context, l *launch) error {
	p, err := ps.start(l)
	if err != nil {
		return err
	}
	select {
	case <-p.exited:
	case <-ctx.Done():
		p.kill()
	}
	return p.err
}

// killAll kills every live process, and any started from now on.
func (ps *processes) killAll() {
	ps.mu.Lock()
	ps.killing = true
	ps.mu.Unlock()
	// A process started from now on kills itself (start); those live now are killed
	// here, outside the lock: killing a cgroup waits until it is empty.
	ps.each(func(p *process) {
		p.killed.Store(true)
		p.group.signal(syscall.SIGKILL)
	})
}

// each calls fn with every live process.
func (ps *processes) each(fn func(p *process)) {
	ps.mu.Lock()
	live := make([]*process, 0, len(ps.live))
	for p := range ps.live {
		live = append(live, p)
	}
	ps.mu.Unlock()
	for _, p := range live {
		fn(p)
	}
}

var discard = slog.New(slog.DiscardHandler)
