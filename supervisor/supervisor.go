// Package supervisor owns replicas as OS processes: ports, spawning into a private /tmp,
// lock-file readiness, health, restarts with backoff, graceful stops, output capture, and
// the routing table of ready endpoints. It is the only code that starts, watches or
// signals processes; it never serves HTTP.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
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

// ErrNotFound is returned for a function the supervisor does not run.
var ErrNotFound = errors.New("function not found")

// Options configure a Supervisor.
type Options struct {
	StateDir string       // replica directories live in StateDir/run
	Exe      string       // the faasd binary, for the spawn shim and classic mode; default: this executable
	Logger   *slog.Logger // default: slog.Default()
	LogLines int          // lines kept per function; default 1000
	// SecretsDir holds the secret values; replicas see those their function lists at
	// SecretsMount.
	SecretsDir string
}

// Supervisor runs every function's replicas.
type Supervisor struct {
	log     *slog.Logger
	exe     string
	runDir  string
	iso     isolation
	spawner *spawner
	watcher *lockWatcher
	ports   *ports
	nextID  atomic.Int64
	lines   int
	secrets string

	mu     sync.Mutex
	fns    map[string]*function
	logs   map[string]*Logs // outlive their function, so logs of a removed function stay readable
	routes atomic.Pointer[routeTable]
}

type routeTable struct {
	byName map[string]*Route
	byHost map[string]*Route
}

// New prepares a supervisor: it cleans the run directory of a previous daemon, starts the
// inotify watcher and finds out how replicas can be isolated here.
func New(opts Options) (*Supervisor, error) {
	s := &Supervisor{
		log:     opts.Logger,
		exe:     opts.Exe,
		runDir:  filepath.Join(opts.StateDir, "run"),
		spawner: newSpawner(),
		ports:   newPorts(),
		lines:   opts.LogLines,
		secrets: opts.SecretsDir,
		fns:     map[string]*function{},
		logs:    map[string]*Logs{},
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.lines <= 0 {
		s.lines = 1000
	}
	if s.exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find own executable: %w", err)
		}
		s.exe = exe
	}
	s.routes.Store(&routeTable{byName: map[string]*Route{}, byHost: map[string]*Route{}})
	// Replicas of a previous daemon died with it (parent-death signal); their directories
	// did not.
	if err := os.RemoveAll(s.runDir); err != nil {
		return nil, fmt.Errorf("clean %s: %w", s.runDir, err)
	}
	if err := os.MkdirAll(s.runDir, 0o711); err != nil {
		return nil, fmt.Errorf("create %s: %w", s.runDir, err)
	}
	// The run directory must be traversable by the function users in the TMPDIR fallback.
	_ = os.Chmod(s.runDir, 0o711)
	w, err := newLockWatcher(s.log)
	if err != nil {
		return nil, err
	}
	s.watcher = w
	probe := filepath.Join(s.runDir, ".probe")
	if err := os.MkdirAll(probe, 0o755); err != nil {
		return nil, err
	}
	iso, err := probeIsolation(s.spawner, s.exe, probe)
	os.RemoveAll(probe)
	s.iso = iso
	if iso == isolateMountNS {
		// The mount point of secrets must exist on the host; it stays empty there.
		if err := os.MkdirAll(SecretsMount, 0o755); err != nil {
			s.log.Warn("secrets cannot be mounted", "path", SecretsMount, "err", err)
		}
	}
	if iso == isolateTmpdir {
		s.log.Warn("no mount namespaces: replicas share /tmp and get TMPDIR pointing at a private directory instead; programs that write /tmp/.lock literally cannot run more than one replica", "err", err)
	} else {
		s.log.Info("replicas get a private /tmp", "isolation", iso.String())
	}
	return s, nil
}

// Apply makes the running functions match fns: new ones start, removed ones drain and
// stop, changed ones roll over (new replicas ready before old ones drain).
func (s *Supervisor) Apply(fns map[string]*config.Function) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, f := range s.fns {
		if _, ok := fns[name]; !ok {
			s.log.Info("function removed", "function", name)
			go f.stop()
			delete(s.fns, name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(fns)) {
		spec := fns[name]
		if f, ok := s.fns[name]; ok {
			if !f.route.Spec().Equal(spec) {
				f.events <- event{kind: evUpdate, spec: spec}
			}
			continue
		}
		logs := s.logs[name]
		if logs == nil {
			logs = NewLogs(s.lines)
			s.logs[name] = logs
		}
		s.log.Info("function added", "function", name, "replicas", spec.Scale.Min)
		s.fns[name] = newFunction(s, spec, logs)
	}
	s.publishRoutes(fns)
}

// publishRoutes routes host names as specs says, not as each route's spec says: a changed
// spec reaches its route only once the function's goroutine takes it, and a host that
// moved from one function to another must move at once, not whenever both have done so.
func (s *Supervisor) publishRoutes(specs map[string]*config.Function) {
	t := &routeTable{byName: map[string]*Route{}, byHost: map[string]*Route{}}
	for name, f := range s.fns {
		t.byName[name] = f.route
		for _, h := range specs[name].Hosts {
			t.byHost[h] = f.route
		}
	}
	s.routes.Store(t)
}

// Route returns the routing entry of a function.
func (s *Supervisor) Route(name string) (*Route, bool) {
	r, ok := s.routes.Load().byName[name]
	return r, ok
}

// RouteForHost returns the function that claimed a host name (lower case, no port).
func (s *Supervisor) RouteForHost(host string) (*Route, bool) {
	t := s.routes.Load()
	if len(t.byHost) == 0 {
		return nil, false
	}
	r, ok := t.byHost[host]
	return r, ok
}

// Logs returns the output buffer of a function, also after it was removed.
func (s *Supervisor) Logs(name string) (*Logs, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.logs[name]
	return l, ok
}

// Scale sets the desired replica count of a function.
func (s *Supervisor) Scale(name string, n int) error {
	if n < 0 {
		return fmt.Errorf("scale %s: negative replica count %d", name, n)
	}
	s.mu.Lock()
	f, ok := s.fns[name]
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("scale %s: %w", name, ErrNotFound)
	}
	reply := make(chan error, 1)
	select {
	case f.events <- event{kind: evScale, n: n, reply: reply}:
	case <-f.done:
		return fmt.Errorf("scale %s: %w", name, ErrNotFound)
	}
	select {
	case err := <-reply:
		return err
	case <-f.done:
		return fmt.Errorf("scale %s: %w", name, ErrNotFound)
	}
}

// Stop drains and stops every replica. When ctx ends first, the remaining processes are
// killed at once.
func (s *Supervisor) Stop(ctx context.Context) error {
	s.mu.Lock()
	fns := slices.Collect(maps.Values(s.fns))
	s.fns = map[string]*function{}
	s.publishRoutes(nil)
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, f := range fns {
		wg.Go(f.stop)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.log.Warn("stop deadline: killing remaining replicas")
		for _, f := range fns {
			for _, st := range f.status.Load().Replicas {
				if st.PID > 0 {
					_ = syscall.Kill(-st.PID, syscall.SIGKILL)
				}
			}
		}
		<-done
	}
	return s.watcher.close()
}

func (f *function) stop() {
	reply := make(chan error, 1)
	select {
	case f.events <- event{kind: evStop, reply: reply}:
		<-reply
	case <-f.done:
	}
}

// prepare creates the replica's directories, output pipes and command.
func (s *Supervisor) prepare(r *replica, tmp string) (*exec.Cmd, *privateMounts, pipe, pipe, error) {
	spec, creds := r.spec, r.creds
	if err := os.MkdirAll(filepath.Dir(r.dir), 0o711); err != nil {
		return nil, nil, pipe{}, pipe{}, err
	}
	if err := os.Mkdir(r.dir, 0o711); err != nil {
		return nil, nil, pipe{}, pipe{}, err
	}
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return nil, nil, pipe{}, pipe{}, err
	}
	// Mode 1777 like /tmp; owned by the function's user so that it can also remove it.
	if err := os.Chmod(tmp, 0o1777|os.ModeSticky); err != nil {
		return nil, nil, pipe{}, pipe{}, err
	}
	if creds.set {
		if err := os.Chown(tmp, creds.uid, creds.gid); err != nil {
			return nil, nil, pipe{}, pipe{}, err
		}
	}
	secretsDir, err := s.copySecrets(spec, r.dir, creds)
	if err != nil {
		return nil, nil, pipe{}, pipe{}, err
	}
	argv := spec.Command
	env := s.environ(spec, r, creds, tmp)
	if secretsDir != "" && !s.canMountSecrets() {
		env = append(env, "OPENFAAS_SECRETS_PATH="+secretsDir)
		secretsDir = ""
	}
	if spec.Fprocess != "" {
		argv = []string{s.exe, "watchdog"}
	}
	sh := shimSpec{
		Tmp: tmp, Secrets: secretsDir, Dir: spec.Workdir, Argv: argv, Parent: os.Getpid(),
		SetUser: creds.set, UID: creds.uid, GID: creds.gid, Groups: creds.groups,
	}
	cmd, ns, err := command(s.iso, s.exe, sh, env)
	if err != nil {
		return nil, nil, pipe{}, pipe{}, err
	}
	stdout, err := newPipe()
	if err != nil {
		return nil, nil, pipe{}, pipe{}, err
	}
	stderr, err := newPipe()
	if err != nil {
		stdout.close()
		return nil, nil, pipe{}, pipe{}, err
	}
	cmd.Stdout, cmd.Stderr = stdout.w, stderr.w
	return cmd, ns, stdout, stderr, nil
}

// environ is the whole environment of a replica: nothing leaks from the daemon's own
// environment but PATH and the locale.
func (s *Supervisor) environ(spec *config.Function, r *replica, c credentials, tmp string) []string {
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/bin:/usr/bin:/bin"
	}
	env := []string{"PATH=" + path, "HOME=/tmp", "HOSTNAME=" + spec.Name}
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
	if spec.Fprocess != "" {
		env = append(env, "fprocess="+spec.Fprocess)
	}
	if s.iso == isolateTmpdir {
		env = append(env, "TMPDIR="+tmp, "HOME="+tmp)
	}
	// Last, so that the user's env cannot point a replica at the wrong port.
	port := strconv.Itoa(r.port)
	return append(env, "PORT="+port, "http_port="+port)
}

type pipe struct{ r, w *os.File }

func newPipe() (pipe, error) {
	r, w, err := os.Pipe()
	return pipe{r: r, w: w}, err
}

func (p pipe) close() {
	p.r.Close()
	p.w.Close()
}

// Status is a function's state as the API, the UI and the scaler see it.
type Status struct {
	Name      string
	Desired   int
	Ready     int
	Starting  int
	Failures  int       // fast failures in a row
	LastError string    // of the last failure
	RetryAt   time.Time // when a failed replica is started again
	State     string    // "ready", "starting", "failing", "scaled to zero", "stopping"
	Replicas  []ReplicaStatus
}

// ReplicaStatus describes one replica.
type ReplicaStatus struct {
	ID       string
	PID      int
	Port     int
	State    string
	Started  time.Time
	InFlight int64
}

// Status returns the state of one function.
func (s *Supervisor) Status(name string) (Status, bool) {
	s.mu.Lock()
	f, ok := s.fns[name]
	s.mu.Unlock()
	if !ok {
		return Status{}, false
	}
	return *f.status.Load(), true
}

// Statuses returns the state of every function, sorted by name.
func (s *Supervisor) Statuses() []Status {
	s.mu.Lock()
	fns := slices.Collect(maps.Values(s.fns))
	s.mu.Unlock()
	out := make([]Status, 0, len(fns))
	for _, f := range fns {
		out = append(out, *f.status.Load())
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (f *function) publishStatus() {
	st := &Status{Name: f.spec.Name, Desired: f.desired, Failures: f.failures, LastError: f.lastError, RetryAt: f.retryAt}
	for _, r := range slices.SortedFunc(maps.Values(f.replicas), func(a, b *replica) int { return a.id - b.id }) {
		switch r.state {
		case ready:
			st.Ready++
		case starting:
			st.Starting++
		}
		rs := ReplicaStatus{ID: r.name(), PID: r.pid, Port: r.port, State: r.state.String(), Started: r.started}
		if r.endpoint != nil {
			rs.InFlight = r.endpoint.InFlight()
		}
		st.Replicas = append(st.Replicas, rs)
	}
	switch {
	case f.stopping:
		st.State = "stopping"
	case f.desired == 0:
		st.State = "scaled to zero"
	case st.Ready >= f.desired:
		st.State = "ready"
	case f.failures > 0:
		st.State = "failing"
	default:
		st.State = "starting"
	}
	f.status.Store(st)
}
