// Package supervisor runs the daemon's processes: the replicas of functions, and the
// services (databases and the like) that functions depend on. It is the only code that
// starts, watches or signals processes.
//
// Both are built from one lifecycle (process.go): a program started in a group of its own
// (in a replica's mount namespace, or the host's for a service), its output captured line
// by line, stopped with a grace period, restarted with one backoff rule (backoff.go). On
// top of it, a replica gets a port, a private /tmp, lock-file readiness, health checks
// and a place in the routing table once ready (Supervisor, function.go, replica.go); a
// service gets a data directory, an init and a readiness check (Services, service.go).
//
// It must not serve HTTP or parse requests (the proxy does), nor decide how many replicas
// a function should have (the scaler does, through Scale).
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"

	"faasd/cgroup"
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
	// Accounts gives each function without a user an account of its own; a daemon that
	// is root needs it, one that is not runs everything as itself.
	Accounts DynamicIDs
	// LogBytes bounds the output kept per function, besides LogLines; default 1 MiB.
	LogBytes int
	// Cgroups gives each replica a cgroup with its function's limits, and measures
	// usage; nil, or one without a hierarchy: process groups, no limits, no usage.
	Cgroups *cgroup.Manager
}

// Supervisor runs every function's replicas.
type Supervisor struct {
	log      *slog.Logger
	exe      string
	runDir   string
	run      *dir // runDir, root's: replica directories are made through it (dirs.go)
	secrets  *secretCopies
	accounts accountSource
	iso      isolation
	procs    *processes
	groups   *containment
	usage    *usageSampler // nil without cgroups
	locks    watcher
	dial     dialFunc
	owns     portCheck
	ports    *ports
	nextID   atomic.Int64

	fns    table[*config.Function, Status, *function]
	routes atomic.Pointer[routeTable]
}

type routeTable struct {
	byName map[string]*Route
	byHost map[string]*Route
}

// New prepares a supervisor: it cleans the run directory of a previous daemon, starts the
// inotify watcher and finds out how replicas can be isolated here.
func New(opts Options) (*Supervisor, error) {
	opts = opts.withDefaults()
	if opts.Exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find own executable: %w", err)
		}
		opts.Exe = exe
	}
	warnNotRoot(opts.Logger)
	state, err := openStateDir(opts.StateDir)
	if err != nil {
		return nil, err
	}
	defer state.close()
	run, err := freshRunDir(state)
	if err != nil {
		return nil, err
	}
	st := newForkStarter(opts.Exe)
	iso, err := probeIsolation(st, run, opts.Logger)
	if err != nil {
		run.close()
		return nil, err
	}
	if iso == isolateTmpdir {
		// The replicas reach their directories by path, through the state dir.
		if err := letPass(state, run); err != nil {
			run.close()
			return nil, err
		}
	}
	if iso == isolateMountNS {
		// The mount point of secrets must exist on the host; it stays empty there.
		if err := os.MkdirAll(SecretsMount, 0o755); err != nil {
			opts.Logger.Warn("secrets cannot be mounted", "path", SecretsMount, "err", err)
		}
	}
	w, err := newLockWatcher(opts.Logger)
	if err != nil {
		run.close()
		return nil, err
	}
	s := newSupervisor(opts, run, iso, st, w, dialTCP, ownsPort)
	// After the probe, which runs in a process group: it belongs to no function.
	st.groups = s.groups
	return s, nil
}

// freshRunDir empties STATE/run: replicas of a previous daemon died with it (parent-death
// signal), their directories did not. RemoveAll neither follows nor leaves the tree
// through a link a replica planted: it opens each directory relative to its parent,
// without following links.
func freshRunDir(state *dir) (*dir, error) {
	if err := os.RemoveAll(state.join("run")); err != nil {
		return nil, fmt.Errorf("clean %s: %w", state.join("run"), err)
	}
	run, err := state.mkdir("run", 0o700, -1, -1)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", state.join("run"), err)
	}
	return run, nil
}

// probeIsolation finds out how replicas can be isolated here, and says so.
func probeIsolation(st *forkStarter, run *dir, log *slog.Logger) (isolation, error) {
	probe, err := run.mkdir(".probe", 0o755, -1, -1)
	if err != nil {
		return 0, err
	}
	probe.close()
	defer os.RemoveAll(run.join(".probe"))
	iso, err := st.probe(run.join(".probe"))
	if errors.Is(err, errors.ErrUnsupported) {
		return iso, err
	}
	switch {
	case iso == isolateTmpdir:
		log.Warn("no mount namespaces: replicas share /tmp and get TMPDIR pointing at a private directory instead; programs that write /tmp/.lock literally cannot run more than one replica", "err", err)
	default:
		log.Info("replicas get a private /tmp", "isolation", iso.String())
	}
	return iso, nil
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.LogLines <= 0 {
		o.LogLines = 1000
	}
	if o.LogBytes <= 0 {
		o.LogBytes = defaultLogBytes
	}
	return o
}

// newSupervisor assembles a supervisor from the parts of the host it uses; the tests
// hand it pretend ones.
func newSupervisor(opts Options, run *dir, iso isolation, st starter, locks watcher, dial dialFunc, owns portCheck) *Supervisor {
	opts = opts.withDefaults()
	s := &Supervisor{
		log:      opts.Logger,
		exe:      opts.Exe,
		runDir:   run.path,
		run:      run,
		secrets:  newSecretCopies(opts.SecretsDir),
		accounts: newAccountSource(opts.Accounts),
		iso:      iso,
		procs:    newProcesses(st),
		groups:   newContainment(opts.Cgroups, opts.Logger),
		locks:    locks,
		dial:     dial,
		owns:     owns,
		ports:    newPorts(),
	}
	s.fns = table[*config.Function, Status, *function]{
		kind:  "function",
		log:   s.log,
		lines: opts.LogLines,
		bytes: opts.LogBytes,
		start: func(spec *config.Function, logs *Logs, _ <-chan struct{}) *function {
			// A function removed a moment ago shares nothing with its successor (replica
			// directories and ports are per replica), so the new one starts at once.
			return newFunction(s, spec, logs)
		},
		changed: s.publishRoutes,
	}
	s.fns.init()
	s.publishRoutes(nil)
	s.usage = startUsageSampler(s.groups, cgroup.Functions, s.procs)
	return s
}

// Apply makes the running functions match fns: new ones start, removed ones drain and
// stop, changed ones roll over (new replicas ready before old ones drain). It does not
// wait for any of it.
func (s *Supervisor) Apply(fns map[string]*config.Function) { s.fns.apply(fns) }

// publishRoutes routes host names as the applied specs say, not as each route's spec
// says: a changed spec reaches its route only once the function's goroutine takes it, and
// a host that moved from one function to another must move at once, not whenever both
// have done so.
func (s *Supervisor) publishRoutes(fns map[string]*function) {
	t := &routeTable{byName: map[string]*Route{}, byHost: map[string]*Route{}}
	for name, f := range fns {
		t.byName[name] = f.route
		for _, h := range f.c.spec().Hosts {
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

// Status returns the state of one function, with its last usage reading.
func (s *Supervisor) Status(name string) (Status, bool) {
	st, ok := s.fns.status(name)
	if ok {
		st = s.usage.addTo(st)
	}
	return st, ok
}

// Statuses returns the state of every function, sorted by name, with its last usage
// reading.
func (s *Supervisor) Statuses() []Status {
	all := s.fns.statuses()
	for i := range all {
		all[i] = s.usage.addTo(all[i])
	}
	return all
}

// Logs returns the output buffer of a function, also after it was removed.
func (s *Supervisor) Logs(name string) (*Logs, bool) { return s.fns.logsOf(name) }

// Scale sets the desired replica count of a function.
func (s *Supervisor) Scale(name string, n int) error {
	if n < 0 {
		return fmt.Errorf("scale %s: negative replica count %d", name, n)
	}
	f, ok := s.fns.get(name)
	if !ok {
		return fmt.Errorf("scale %s: %w", name, ErrNotFound)
	}
	reply := make(chan error, 1)
	select {
	case f.events <- event{kind: evScale, n: n, reply: reply}:
	case <-f.c.done:
		return fmt.Errorf("scale %s: %w", name, ErrNotFound)
	}
	select {
	case err := <-reply:
		return err
	case <-f.c.done:
		return fmt.Errorf("scale %s: %w", name, ErrNotFound)
	}
}

// Stop drains and stops every replica, also of functions removed a moment ago. When ctx
// ends first, the remaining processes are killed at once.
func (s *Supervisor) Stop(ctx context.Context) error {
	err := s.fns.stop(ctx, s.procs)
	s.usage.close()
	closed := s.run.close()
	if errors.Is(closed, os.ErrClosed) {
		closed = nil // stopped before
	}
	return errors.Join(err, s.locks.close(), closed)
}
