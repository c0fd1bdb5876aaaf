package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"faasd/accounts"
	"faasd/cgroup"
	"faasd/config"
)

// pretend is a machine without processes, on which the lifecycle's rules run in a
// synctest bubble with its fake clock: a program is a goroutine that behaves as the test
// workload (internal/testkit/workload) does, by its environment; its lock file is a real
// file in the replica's directory, announced through a pretend watcher; its port is an
// entry in a table that the pretend dial looks up. The tests with real processes prove
// that the real machine behaves the same.
//
// Programs, by argv[0]:
//   - "workload": listens on $PORT unless NO_LISTEN=1, writes its lock file after
//     $READY_DELAY unless NO_LOCK=1, exits 0 on SIGTERM unless IGNORE_TERM=1, exits with
//     $EXIT_AT_START at once when set;
//   - "exit": prints a line on stderr and exits with argv[1] after argv[2] (a duration);
//   - "hang": runs until a signal ends it;
//   - anything else cannot be started.
type pretend struct {
	mu       sync.Mutex
	launches []*launch // every start asked for
	programs []*program
	subs     map[string]chan<- lockEvent // directory → the replica watching it
	ports    map[string]*program         // address → the program listening there
}

func newPretend() *pretend {
	return &pretend{subs: map[string]chan<- lockEvent{}, ports: map[string]*program{}}
}

// program is one pretend process.
type program struct {
	m       *pretend
	pid     int
	l       *launch
	env     map[string]string
	started time.Time

	signals chan syscall.Signal // to the program's goroutine
	cmds    chan func() bool    // the test's requests: true when the program ended
	exit    chan error          // its exit status, once

	mu        sync.Mutex
	received  []signalAt
	removed   bool // its group
	oomKilled bool
	ended     time.Time
}

type signalAt struct {
	sig syscall.Signal
	at  time.Duration // after the program started
}

func (m *pretend) start(l *launch) (running, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.launches = append(m.launches, l)
	switch l.argv[0] {
	case "workload", "exit", "hang":
	default:
		return running{}, fmt.Errorf("%s: %w in PATH", l.argv[0], os.ErrNotExist)
	}
	p := &program{
		m: m, pid: 1000 + len(m.programs), l: l, env: envOf(l), started: time.Now(),
		signals: make(chan syscall.Signal, 16), cmds: make(chan func() bool), exit: make(chan error, 1),
	}
	m.programs = append(m.programs, p)
	go p.run()
	done := make(chan struct{})
	close(done)
	return running{pid: p.pid, group: pretendGroup{p}, wait: func() error { return <-p.exit }, output: done}, nil
}

// envOf returns a launch's environment as a map: the last value of a name counts.
func envOf(l *launch) map[string]string {
	env := map[string]string{}
	for _, kv := range l.env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	return env
}

func (m *pretend) watch(dir string) (<-chan lockEvent, func(), error) {
	ch := make(chan lockEvent, 16)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.subs[dir] = ch
	return ch, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		delete(m.subs, dir)
	}, nil
}

func (m *pretend) close() error { return nil }

// owns is the pretend machine's portCheck: the program listening on the port must be in
// the group.
func (m *pretend) owns(g group, _, port int) error {
	m.mu.Lock()
	p := m.ports["127.0.0.1:"+strconv.Itoa(port)]
	m.mu.Unlock()
	if p == nil {
		return fmt.Errorf("%w: nothing listens on port %d", errPortTaken, port)
	}
	if pids, _ := g.pids(); !slices.Contains(pids, p.pid) {
		return fmt.Errorf("%w: port %d is held by pid %d, outside the replica", errPortTaken, port, p.pid)
	}
	return nil
}

func (m *pretend) dial(ctx context.Context, addr string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ports[addr] == nil {
		return fmt.Errorf("dial tcp %s: %w", addr, syscall.ECONNREFUSED)
	}
	return nil
}

// started returns the programs started so far with argv[0] prog, in order.
func (m *pretend) started(prog string) []*program {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*program
	for _, p := range m.programs {
		if p.l.argv[0] == prog {
			out = append(out, p)
		}
	}
	return out
}

// gaps returns the pauses between the starts of successive programs.
func gaps(ps []*program) []time.Duration {
	var out []time.Duration
	for i := 1; i < len(ps); i++ {
		out = append(out, ps[i].started.Sub(ps[i-1].started))
	}
	return out
}

func (p *program) run() {
	switch p.l.argv[0] {
	case "exit":
		var d time.Duration
		if len(p.l.argv) > 2 {
			d, _ = time.ParseDuration(p.l.argv[2])
		}
		select {
		case <-time.After(d):
			p.l.output.line("stderr", "exiting with "+p.l.argv[1])
			p.end(exitStatus(p.l.argv[1]))
		case sig := <-p.signals:
			p.end(signalled(sig))
		}
	case "hang":
		p.end(signalled(<-p.signals))
	case "workload":
		p.workload()
	}
}

func (p *program) workload() {
	if code := p.env["EXIT_AT_START"]; code != "" {
		p.l.output.line("stderr", "exiting at start as asked")
		p.end(exitStatus(code))
		return
	}
	if p.env["NO_LISTEN"] != "1" {
		p.listen(true)
	}
	var lock <-chan time.Time
	if p.env["NO_LOCK"] != "1" && p.l.tmp != "" {
		d, _ := time.ParseDuration(p.env["READY_DELAY"])
		lock = time.After(d)
	}
	for {
		select {
		case <-lock:
			p.lock(true)
			p.l.output.line("stdout", "ready on port "+p.env["PORT"])
		case sig := <-p.signals:
			if sig == syscall.SIGTERM && p.env["IGNORE_TERM"] == "1" {
				continue
			}
			if sig == syscall.SIGTERM {
				p.lock(false)
			}
			p.end(signalled(sig))
			return
		case f := <-p.cmds:
			if f() {
				return
			}
		}
	}
}

func exitStatus(code string) error {
	if code == "0" {
		return nil
	}
	return errors.New("exit status " + code)
}

// signalled is how the workload ends on a signal: SIGTERM is a clean exit.
func signalled(sig syscall.Signal) error {
	if sig == syscall.SIGTERM {
		return nil
	}
	return signalExit(sig)
}

// signalExit is the exit status of a program a signal ended, as *exec.ExitError tells it.
type signalExit syscall.Signal

func (e signalExit) Error() string { return "signal: " + syscall.Signal(e).String() }
func (e signalExit) Sys() any      { return syscall.WaitStatus(e) }

// end ends the program; a lock file stays where it is, as it does after a crash.
func (p *program) end(err error) {
	p.listen(false)
	p.mu.Lock()
	p.ended = time.Now()
	p.mu.Unlock()
	p.exit <- err
}

func (p *program) listen(on bool) {
	addr := "127.0.0.1:" + p.env["PORT"]
	p.m.mu.Lock()
	defer p.m.mu.Unlock()
	switch {
	case on:
		p.m.ports[addr] = p
	case p.m.ports[addr] == p:
		delete(p.m.ports, addr)
	}
}

// lock writes or removes the lock file in the program's /tmp, as a program would.
func (p *program) lock(present bool) {
	if p.l.tmp == "" {
		return
	}
	path := filepath.Join(p.l.tmp, ".lock")
	if present {
		os.WriteFile(path, []byte(strconv.Itoa(p.pid)), 0o644)
	} else if os.Remove(path) != nil {
		return
	}
	p.m.mu.Lock()
	ch := p.m.subs[p.l.tmp]
	p.m.mu.Unlock()
	if ch != nil {
		select {
		case ch <- lockEvent{name: ".lock", present: present}:
		default:
		}
	}
}

// do runs f in the program's goroutine; f returns true when the program has ended.
func (p *program) do(f func() bool) {
	done := make(chan struct{})
	p.cmds <- func() bool { defer close(done); return f() }
	<-done
}

// crash makes a running workload exit with code.
func (p *program) crash(code string) { p.do(func() bool { p.end(exitStatus(code)); return true }) }

// outOfMemory makes the kernel's OOM killer end a running program.
func (p *program) outOfMemory() {
	p.do(func() bool {
		p.mu.Lock()
		p.oomKilled = true
		p.mu.Unlock()
		p.end(signalExit(syscall.SIGKILL))
		return true
	})
}

// unlock makes a running workload remove its lock file.
func (p *program) unlock() { p.do(func() bool { p.lock(false); return false }) }

// deafen makes a running workload stop accepting connections.
func (p *program) deafen() { p.do(func() bool { p.listen(false); return false }) }

// replica is the id of the replica the program is, from its group's name.
func (p *program) replica() string { return p.l.name.instance }

// signalsSeen returns the signals the program's group received, with when.
func (p *program) signalsSeen() []signalAt {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.received)
}

// lived returns how long the program ran; false while it runs.
func (p *program) lived() (time.Duration, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ended.Sub(p.started), !p.ended.IsZero()
}

// pretendGroup is the group of one pretend program: signals reach the program, as long
// as the group exists.
type pretendGroup struct{ p *program }

func (g pretendGroup) join(*syscall.SysProcAttr) (func(), error) { return func() {}, nil }

func (g pretendGroup) started(int) {}

func (g pretendGroup) signal(sig syscall.Signal) {
	p := g.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.removed || !p.ended.IsZero() {
		return
	}
	p.received = append(p.received, signalAt{sig: sig, at: time.Since(p.started)})
	select {
	case p.signals <- sig:
	default:
	}
}

func (g pretendGroup) waitEmpty(context.Context) error { return nil }

func (g pretendGroup) pids() ([]int, error) {
	g.p.mu.Lock()
	defer g.p.mu.Unlock()
	if g.p.removed || !g.p.ended.IsZero() {
		return nil, nil
	}
	return []int{g.p.pid}, nil
}

func (g pretendGroup) oomKills() uint64 {
	g.p.mu.Lock()
	defer g.p.mu.Unlock()
	if g.p.oomKilled {
		return 1
	}
	return 0
}

func (g pretendGroup) usage() (cgroup.Usage, bool) { return cgroup.Usage{}, false }

func (g pretendGroup) remove() {
	g.p.mu.Lock()
	g.p.removed = true
	g.p.mu.Unlock()
}

// advance lets d pass on the bubble's clock, and everything that then happens settle.
func advance(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

// pretendSupervisor returns a supervisor on a pretend machine, stopped when the test ends.
// Call it inside a synctest bubble.
func pretendSupervisor(t *testing.T) (*Supervisor, *pretend) {
	t.Helper()
	m := newPretend()
	state := t.TempDir()
	opts := Options{StateDir: state, SecretsDir: filepath.Join(state, "secrets"), Logger: slog.New(slog.NewTextHandler(t.Output(), nil)), Accounts: testAccounts(t)}
	for _, d := range []string{"run", "secrets"} {
		if err := os.Mkdir(filepath.Join(state, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	run, err := openDir(filepath.Join(state, "run"))
	if err != nil {
		t.Fatal(err)
	}
	s := newSupervisor(opts, run, isolateMountNS, m, m, m.dial, m.owns)
	t.Cleanup(func() {
		if err := s.Stop(context.Background()); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return s, m
}

// testAccounts hands out accounts of their own to the functions and services of a test,
// from the default range, checked against this machine's accounts.
func testAccounts(t *testing.T) *accounts.Pool {
	t.Helper()
	p, err := accounts.Open(filepath.Join(t.TempDir(), "users.json"), config.DefaultUserRange)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// pretendFunction is a function running the pretend workload with env.
func pretendFunction(t *testing.T, name string, env map[string]string) *config.Function {
	t.Helper()
	f := &config.Function{
		Name: name, Command: []string{"workload"}, Workdir: "/", Env: env,
		ReadinessTimeout: 10 * time.Second, HealthInterval: time.Second, Timeout: 10 * time.Second,
		DrainTimeout: 20 * time.Second, StopGrace: 5 * time.Second,
	}
	if err := f.Validate(config.DefaultScalePolicy); err != nil {
		t.Fatal(err)
	}
	return f
}

// pretendServices returns a service manager on a pretend machine, stopped when the test
// ends. Call it inside a synctest bubble.
func pretendServices(t *testing.T) (*Services, *pretend) {
	t.Helper()
	m := newPretend()
	svcs := newServices(ServiceOptions{Logger: slog.New(slog.NewTextHandler(t.Output(), nil)), Accounts: testAccounts(t)}, m, m.dial)
	t.Cleanup(func() {
		if err := svcs.Stop(context.Background()); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return svcs, m
}

// pretendService is a service running the pretend workload on port 5432 with env, ready
// once that port accepts connections.
func pretendService(t *testing.T, name string, env map[string]string) *config.Service {
	t.Helper()
	e := map[string]string{"PORT": "5432"}
	for k, v := range env {
		e[k] = v
	}
	s := &config.Service{
		Name: name, Command: []string{"workload"}, Workdir: "/", Env: e,
		DataDir: filepath.Join(t.TempDir(), "services", name), ReadyTCP: "127.0.0.1:5432",
		ReadyTimeout: 10 * time.Second, StopGrace: 5 * time.Second,
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	return s
}
