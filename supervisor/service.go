package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"faasd/config"
)

// readyPoll is how often a starting service is checked. A database opens its port when it
// is ready and tells nobody, so this is the one place where the supervisor polls.
const readyPoll = 100 * time.Millisecond

var (
	errServiceStopped = errors.New("stopped")
	errServiceChanged = errors.New("spec changed")
)

// ServiceOptions configure Services.
type ServiceOptions struct {
	Logger   *slog.Logger // default: slog.Default()
	LogLines int          // lines kept per service; default 1000
}

// Services runs the daemon's supervised services: long-running, stateful dependencies
// such as a database. Each gets a data directory under the state dir, an init on its first
// start, a readiness check, restarts with the replicas' backoff and a graceful stop. They
// see the host's /tmp and network, and are never scaled or routed to.
type Services struct {
	log *slog.Logger
	// The replicas' spawning thread sits in the mount namespace of the last replica it
	// started, so services get a thread of their own that never leaves the host's. Its
	// life also bounds the parent-death signal of every service process.
	spawner *spawner
	lines   int

	mu      sync.Mutex
	svcs    map[string]*service
	gone    map[string]*service // removed, maybe still stopping
	logs    map[string]*Logs
	changed chan struct{}
}

// NewServices returns a manager with no services.
func NewServices(opts ServiceOptions) *Services {
	m := &Services{
		log:     opts.Logger,
		spawner: newSpawner(),
		lines:   opts.LogLines,
		svcs:    map[string]*service{},
		gone:    map[string]*service{},
		logs:    map[string]*Logs{},
		changed: make(chan struct{}),
	}
	if m.log == nil {
		m.log = slog.Default()
	}
	if m.lines <= 0 {
		m.lines = 1000
	}
	return m
}

// ServiceStatus is a service's state as the API, the UI and the wiring see it.
type ServiceStatus struct {
	Name      string
	State     string // "starting", "ready", "failing", "stopping"
	PID       int    // of the process now running: init, or the service itself
	Started   time.Time
	ReadyAt   time.Time // zero until ready
	Restarts  int       // starts after the first
	Failures  int       // fast failures in a row
	LastError string
	RetryAt   time.Time
}

// Apply makes the running services match specs: new ones start, removed ones stop,
// changed ones stop and start again with the new spec. It does not wait; Changed and
// Ready tell when they are up.
func (m *Services) Apply(specs map[string]*config.Service) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, s := range m.svcs {
		if _, ok := specs[name]; !ok {
			m.log.Info("service removed", "service", name)
			close(s.quit)
			m.gone[name] = s
			delete(m.svcs, name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(specs)) {
		spec := specs[name]
		if s, ok := m.svcs[name]; ok {
			if !s.want.Load().Equal(spec) {
				s.want.Store(spec)
				select {
				case s.kick <- struct{}{}:
				default: // a kick is pending and will read the latest spec
				}
			}
			continue
		}
		logs := m.logs[name]
		if logs == nil {
			logs = NewLogs(m.lines)
			m.logs[name] = logs
		}
		// A service removed a moment ago may still hold the data dir and its port.
		var after <-chan struct{}
		if old, ok := m.gone[name]; ok {
			after = old.done
			delete(m.gone, name)
		}
		m.log.Info("service added", "service", name)
		m.svcs[name] = newService(m, spec, logs, after)
	}
	m.notifyLocked()
}

// Changed returns a channel that is closed at the next change of any service's state.
// Take it before looking at the states, so that no change goes unseen.
func (m *Services) Changed() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.changed
}

func (m *Services) notify() {
	m.mu.Lock()
	m.notifyLocked()
	m.mu.Unlock()
}

func (m *Services) notifyLocked() {
	close(m.changed)
	m.changed = make(chan struct{})
}

// Ready reports whether a service runs and passed its readiness check.
func (m *Services) Ready(name string) bool {
	st, ok := m.Status(name)
	return ok && st.State == "ready"
}

// Status returns the state of one service.
func (m *Services) Status(name string) (ServiceStatus, bool) {
	m.mu.Lock()
	s, ok := m.svcs[name]
	m.mu.Unlock()
	if !ok {
		return ServiceStatus{}, false
	}
	return *s.status.Load(), true
}

// Statuses returns the state of every service, sorted by name.
func (m *Services) Statuses() []ServiceStatus {
	m.mu.Lock()
	svcs := slices.Collect(maps.Values(m.svcs))
	m.mu.Unlock()
	out := make([]ServiceStatus, 0, len(svcs))
	for _, s := range svcs {
		out = append(out, *s.status.Load())
	}
	slices.SortFunc(out, func(a, b ServiceStatus) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Logs returns the output buffer of a service, also after it was removed.
func (m *Services) Logs(name string) (*Logs, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.logs[name]
	return l, ok
}

// WaitReady waits until every service is ready. A service whose attempt failed ends the
// wait with its error: at start-up that is a broken installation or
// configuration, which the operator should see at once rather than after the retries.
func (m *Services) WaitReady(ctx context.Context) error {
	for {
		changed := m.Changed()
		waiting := 0
		for _, st := range m.Statuses() {
			switch {
			case st.State == "ready":
			case st.Failures > 0:
				return fmt.Errorf("service %s did not become ready: %s (its output is in the log)", st.Name, st.LastError)
			default:
				waiting++
			}
		}
		if waiting == 0 {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("waiting for services: %w", ctx.Err())
		}
	}
}

// Stop stops every service: SIGTERM, then SIGKILL after its stop_grace. When ctx ends
// first, the remaining processes are killed at once.
func (m *Services) Stop(ctx context.Context) error {
	m.mu.Lock()
	running := slices.Collect(maps.Values(m.svcs))
	for _, s := range running {
		close(s.quit)
	}
	svcs := append(running, slices.Collect(maps.Values(m.gone))...)
	m.svcs, m.gone = map[string]*service{}, map[string]*service{}
	m.mu.Unlock()
	done := make(chan struct{})
	go func() {
		for _, s := range svcs {
			<-s.done
		}
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		m.log.Warn("stop deadline: killing remaining services")
		for _, s := range svcs {
			if pid := s.pid.Load(); pid > 0 {
				_ = syscall.Kill(-int(pid), syscall.SIGKILL)
			}
		}
		<-done
		return ctx.Err()
	}
}

// service is the controller of one service: a goroutine that runs the process again and
// again until told to quit.
type service struct {
	m      *Services
	name   string
	logs   *Logs
	log    *slog.Logger
	want   atomic.Pointer[config.Service] // the spec to run; a kick says it changed
	kick   chan struct{}
	quit   chan struct{} // closed to stop
	done   chan struct{} // closed once stopped
	pid    atomic.Int64  // process group of the running process, for a forced stop
	status atomic.Pointer[ServiceStatus]
}

func newService(m *Services, spec *config.Service, logs *Logs, after <-chan struct{}) *service {
	s := &service{
		m:    m,
		name: spec.Name,
		logs: logs,
		log:  m.log.With("service", spec.Name),
		kick: make(chan struct{}, 1),
		quit: make(chan struct{}),
		done: make(chan struct{}),
	}
	s.want.Store(spec)
	s.status.Store(&ServiceStatus{Name: spec.Name, State: "starting"})
	go s.loop(after)
	return s
}

func (s *service) loop(after <-chan struct{}) {
	defer close(s.done)
	if after != nil {
		select {
		case <-after:
		case <-s.quit:
			return
		}
	}
	st := ServiceStatus{Name: s.name}
	for attempt := 1; ; attempt++ {
		spec := s.want.Load()
		st.State, st.PID, st.Started, st.ReadyAt = "starting", 0, time.Now(), time.Time{}
		st.Restarts = attempt - 1
		s.publish(st)
		err := s.run(spec, &st, attempt)
		readyAt := st.ReadyAt
		st.PID, st.ReadyAt = 0, time.Time{}
		switch {
		case errors.Is(err, errServiceStopped):
			st.State = "stopping"
			s.publish(st)
			s.log.Info("service stopped")
			return
		case errors.Is(err, errServiceChanged):
			s.log.Info("spec changed: restarting the service")
			st.Failures, st.LastError, st.RetryAt = 0, "", time.Time{}
			attempt = 0 // a new spec counts its restarts afresh
			continue
		}
		// Same rule as for replicas: a failure after a stable run starts the count
		// again; each fast one, ready for a moment or not, doubles the pause.
		if !readyAt.IsZero() && time.Since(readyAt) >= stableAfter {
			st.Failures = 1
		} else {
			st.Failures++
		}
		delay := min(baseBackoff<<min(st.Failures-1, 20), maxBackoff)
		st.State, st.LastError, st.RetryAt = "failing", err.Error(), time.Now().Add(delay)
		s.publish(st)
		s.log.Warn("service failed", "err", err, "failures", st.Failures, "restart_in", delay)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-s.kick:
			t.Stop()
			// A new spec deserves an immediate attempt.
			st.Failures, st.LastError, st.RetryAt = 0, "", time.Time{}
		case <-s.quit:
			t.Stop()
			st.State = "stopping"
			s.publish(st)
			return
		}
	}
}

func (s *service) publish(st ServiceStatus) {
	s.status.Store(&st)
	s.m.notify()
}

// run takes the service through one life: data dir, init when fresh, start, readiness,
// and then until the process exits or the controller is told to stop or restart. It
// returns errServiceStopped, errServiceChanged or why the process failed; st.ReadyAt
// tells whether it had been ready.
func (s *service) run(spec *config.Service, st *ServiceStatus, attempt int) error {
	creds, err := lookupUser(spec.User)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), spec.ReadyTimeout)
	defer cancel()
	fresh, err := prepareDataDir(spec, creds, s.log)
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if fresh && spec.Init != nil {
		if err := s.init(ctx, spec, creds, st); err != nil {
			return err
		}
	}
	p, err := s.start(spec, spec.Command, creds, strconv.Itoa(attempt))
	if err != nil {
		return err
	}
	s.pid.Store(int64(p.cmd.Process.Pid))
	defer s.pid.Store(0)
	st.PID = p.cmd.Process.Pid
	s.publish(*st)
	s.log.Info("service started", "pid", st.PID, "user", creds.name)

	checked := make(chan error, 1)
	go func() { checked <- s.checkReady(ctx, spec, creds) }()
	for {
		select {
		case err := <-checked:
			checked = nil
			if err != nil {
				p.kill()
				return fmt.Errorf("not ready within ready_timeout (%s): %w", spec.ReadyTimeout, err)
			}
			st.State, st.ReadyAt, st.RetryAt = "ready", time.Now(), time.Time{}
			s.log.Info("service ready", "after", st.ReadyAt.Sub(st.Started).Round(time.Millisecond))
			s.publish(*st)
		case err := <-p.exited:
			cancel()
			p.finish()
			if err == nil {
				err = errors.New("exited with status 0")
			}
			return fmt.Errorf("process exited: %w", err)
		case <-s.quit:
			cancel()
			st.State = "stopping"
			s.publish(*st)
			p.stop(spec.StopGrace, s.log)
			return errServiceStopped
		case <-s.kick:
			if s.want.Load() == spec {
				continue
			}
			cancel()
			st.State = "stopping"
			s.publish(*st)
			p.stop(spec.StopGrace, s.log)
			return errServiceChanged
		}
	}
}

// init runs the init command in a fresh data dir. A marker next to the data dir stands
// for an init in progress: when the daemon dies during one, the next attempt knows that
// the data dir holds nothing but that init's leftovers, and starts over.
func (s *service) init(ctx context.Context, spec *config.Service, creds credentials, st *ServiceStatus) error {
	marker := initMarker(spec)
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	s.log.Info("fresh data dir: running init", "dir", spec.DataDir, "init", spec.Init)
	p, err := s.start(spec, spec.Init, creds, "init")
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	s.pid.Store(int64(p.cmd.Process.Pid))
	defer s.pid.Store(0)
	st.PID = p.cmd.Process.Pid
	s.publish(*st)
	select {
	case err := <-p.exited:
		p.finish()
		if err != nil {
			return fmt.Errorf("init: %w", err)
		}
	case <-ctx.Done():
		p.kill()
		return fmt.Errorf("init: not done within ready_timeout (%s)", spec.ReadyTimeout)
	case <-s.quit:
		p.stop(spec.StopGrace, s.log)
		return errServiceStopped
	}
	if err := os.Remove(marker); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	s.log.Info("init done")
	return nil
}

func initMarker(spec *config.Service) string {
	return filepath.Join(filepath.Dir(spec.DataDir), "."+spec.Name+".init")
}

// prepareDataDir creates the data dir, owned by the service's user, and reports whether it
// is fresh: empty, and so in need of init.
func prepareDataDir(spec *config.Service, c credentials, log *slog.Logger) (bool, error) {
	parent := filepath.Dir(spec.DataDir)
	if err := os.MkdirAll(parent, 0o711); err != nil {
		return false, err
	}
	if c.set && c.uid != 0 {
		// The service's user must be able to reach its data dir through the state dir,
		// which the daemon keeps to itself otherwise. Traversal only: nothing in it
		// becomes listable.
		for _, d := range []string{filepath.Dir(parent), parent} {
			if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o001 == 0 {
				log.Info("making the state dir traversable for the service's user", "dir", d)
				if err := os.Chmod(d, fi.Mode().Perm()|0o011); err != nil {
					return false, err
				}
			}
		}
	}
	if _, err := os.Stat(initMarker(spec)); err == nil {
		log.Warn("an earlier init did not finish: starting the data dir over", "dir", spec.DataDir)
		if err := os.RemoveAll(spec.DataDir); err != nil {
			return false, err
		}
	}
	switch err := os.Mkdir(spec.DataDir, 0o700); {
	case err == nil:
		if c.set {
			if err := os.Chown(spec.DataDir, c.uid, c.gid); err != nil {
				return false, err
			}
		}
	case !errors.Is(err, os.ErrExist):
		return false, err
	}
	entries, err := os.ReadDir(spec.DataDir)
	if err != nil {
		return false, err
	}
	return len(entries) == 0, nil
}

// checkReady returns nil once the service passes its readiness check, or the last
// reason it did not when ctx ends.
func (s *service) checkReady(ctx context.Context, spec *config.Service, creds credentials) error {
	if spec.ReadyTCP == "" && spec.ReadyCommand == nil {
		return nil
	}
	t := time.NewTicker(readyPoll)
	defer t.Stop()
	var last error
	for {
		if spec.ReadyTCP != "" {
			d := net.Dialer{Timeout: time.Second}
			c, err := d.DialContext(ctx, "tcp", spec.ReadyTCP)
			if err == nil {
				c.Close()
				return nil
			}
			last = err
		} else {
			if last = s.runCheck(ctx, spec, creds); last == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			if last == nil {
				last = ctx.Err()
			}
			return last
		case <-t.C:
		}
	}
}

// runCheck runs ready_command once. Its output only matters when it fails, so it is kept
// for the error instead of filling the logs with every attempt.
func (s *service) runCheck(ctx context.Context, spec *config.Service, creds credentials) error {
	cmd, err := serviceCommand(spec, spec.ReadyCommand, creds)
	if err != nil {
		return err
	}
	out := &limitedBuffer{max: 512}
	cmd.Stdout, cmd.Stderr = out, out
	// A child of the check that keeps its output open must not hold the wait.
	cmd.WaitDelay = time.Second
	if err := s.m.spawner.start(cmd, nil); err != nil {
		return err
	}
	// A check that hangs is killed with its children when the deadline comes.
	stop := context.AfterFunc(ctx, func() { signalGroup(cmd, syscall.SIGKILL) })
	defer stop()
	if err := cmd.Wait(); err != nil {
		if msg := strings.TrimSpace(out.String()); msg != "" {
			return fmt.Errorf("ready_command: %w: %s", err, msg)
		}
		return fmt.Errorf("ready_command: %w", err)
	}
	return nil
}

// serviceCommand builds the exec.Cmd of a service's command: the replicas' without the
// private /tmp, since a service's files (a database's socket) are meant to be shared.
func serviceCommand(spec *config.Service, argv []string, c credentials) (*exec.Cmd, error) {
	sh := shimSpec{Dir: spec.Workdir, Argv: argv, SetUser: c.set, UID: c.uid, GID: c.gid, Groups: c.groups}
	cmd, _, err := command(isolateTmpdir, "", sh, serviceEnviron(spec, c))
	return cmd, err
}

// serviceEnviron is the whole environment of a service: nothing leaks from the daemon's
// own but PATH and the locale. HOME and DATA_DIR are its data dir.
func serviceEnviron(spec *config.Service, c credentials) []string {
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/bin:/usr/bin:/bin"
	}
	env := []string{"PATH=" + path, "HOME=" + spec.DataDir}
	for _, k := range []string{"LANG", "LC_ALL", "TZ"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	if c.set {
		env = append(env, "USER="+c.name, "LOGNAME="+c.name)
	}
	for _, k := range slices.Sorted(maps.Keys(spec.Env)) {
		env = append(env, k+"="+spec.Env[k])
	}
	return append(env, "DATA_DIR="+spec.DataDir)
}

// serviceProc is one running process of a service, its output pumped into the logs.
type serviceProc struct {
	cmd    *exec.Cmd
	exited chan error
	copied chan struct{}
}

func (s *service) start(spec *config.Service, argv []string, creds credentials, instance string) (*serviceProc, error) {
	cmd, err := serviceCommand(spec, argv, creds)
	if err != nil {
		return nil, err
	}
	stdout, err := newPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := newPipe()
	if err != nil {
		stdout.close()
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = stdout.w, stderr.w
	err = s.m.spawner.start(cmd, nil)
	// The child holds the write ends now; ours must go, or the readers never see EOF.
	stdout.w.Close()
	stderr.w.Close()
	if err != nil {
		stdout.r.Close()
		stderr.r.Close()
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	p := &serviceProc{cmd: cmd, exited: make(chan error, 1), copied: make(chan struct{}, 2)}
	log := s.log.With("run", instance)
	go pump(stdout.r, "stdout", s.name, instance, s.logs, log, p.copied)
	go pump(stderr.r, "stderr", s.name, instance, s.logs, log, p.copied)
	go func() { p.exited <- cmd.Wait() }()
	return p, nil
}

// finish cleans up after the process exited on its own: children left in its group go
// with it.
func (p *serviceProc) finish() {
	signalGroup(p.cmd, syscall.SIGKILL)
	waitCopied(p.copied)
}

func (p *serviceProc) kill() {
	signalGroup(p.cmd, syscall.SIGKILL)
	<-p.exited
	waitCopied(p.copied)
}

// stop asks the process group to end with SIGTERM and kills it after grace.
func (p *serviceProc) stop(grace time.Duration, log *slog.Logger) {
	signalGroup(p.cmd, syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.exited:
	case <-t.C:
		log.Warn("stop grace over: killing", "pid", p.cmd.Process.Pid)
		signalGroup(p.cmd, syscall.SIGKILL)
		<-p.exited
	}
	p.finish()
}
