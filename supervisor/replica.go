package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"faasd/cgroup"
	"faasd/config"
)

// replicaState is where a replica is in its life.
type replicaState int

const (
	starting  replicaState = iota // process started, lock file not seen yet
	ready                         // in the routing table
	unhealthy                     // lock file gone or port dead: serving until replaced
	leaving                       // out of routing, draining, then signalled
)

func (s replicaState) String() string {
	return [...]string{"starting", "ready", "unhealthy", "leaving"}[s]
}

var (
	errReadinessTimeout = errors.New("not ready before readiness_timeout")
	errNotListening     = errors.New("lock file written but the port does not accept connections")
	errLockRemoved      = errors.New("lock file removed")
	errNotAlive         = errors.New("port stopped accepting connections")
)

// replica is one process of a function. Its goroutine owns the process; the function's
// controller owns its state and learns what happens through events.
type replica struct {
	id       int
	gen      int // spec generation it was started with
	spec     *config.Function
	creds    credentials // the account it runs as
	port     int
	dir      string      // STATE/run/NAME/ID
	secrets  *secretsDir // its copies of secrets, nil without any
	endpoint *Endpoint
	started  time.Time

	// owned by the controller
	state   replicaState
	readyAt time.Time
	pid     int           // learnt from evStarted
	stop    chan struct{} // closed by the controller to make the replica leave
}

func (r *replica) name() string { return strconv.Itoa(r.id) }

// tmp is the replica's private /tmp on the host.
func (r *replica) tmp() string { return filepath.Join(r.dir, "tmp") }

// run is the replica's goroutine: it lives the replica's life, cleans up after it and
// tells the controller how it ended.
func (r *replica) run(s *Supervisor, events chan<- event, logs *Logs) {
	log := s.log.With("function", r.spec.Name, "replica", r.id)
	var err error
	defer func() { events <- event{kind: evExited, r: r, err: err} }()
	defer s.ports.put(r.port)
	defer func() {
		s.secrets.drop(r.secrets)
		// RemoveAll opens each directory relative to its parent without following links,
		// so nothing the replica left in its /tmp leads it elsewhere.
		if err := os.RemoveAll(r.dir); err != nil {
			log.Warn("remove replica directory", "err", err)
		}
	}()
	err = r.live(s, events, logOutput{logs: logs, name: r.spec.Name, instance: r.name(), log: log}, log)
}

// live starts the process, waits until it is ready, and watches it until it exits or is
// told to leave. It returns why the process ended, nil when it was asked to.
func (r *replica) live(s *Supervisor, events chan<- event, out output, log *slog.Logger) error {
	l, err := s.launch(r, out, log)
	if err != nil {
		return err
	}
	locks, unwatch, err := s.locks.watch(r.tmp())
	if err != nil {
		return err
	}
	defer unwatch()
	p, err := s.procs.start(l)
	if err != nil {
		return fmt.Errorf("start %s: %w", r.spec.Name, err)
	}
	log.Info("replica started", "pid", p.pid, "port", r.port)
	events <- event{kind: evStarted, r: r, n: p.pid}

	ctx, cancel := context.WithTimeout(context.Background(), r.spec.ReadinessTimeout)
	defer cancel()
	readiness := make(chan error, 1)
	owned := func() error { return s.owns(p.group, p.pid, r.port) }
	go func() { readiness <- r.awaitReady(ctx, s.dial, locks, owned) }()
	select {
	case err := <-readiness:
		if err != nil {
			log.Warn("killing replica", "reason", err)
			p.kill()
			return err
		}
	case <-p.exited:
		return p.exitError()
	case <-r.stop:
		return r.leave(p, log)
	}
	events <- event{kind: evReady, r: r}
	return r.serve(s.dial, p, locks, events, owned, log)
}

// awaitReady returns once the lock file exists and the port accepts a connection from the
// replica's own group (owned), or with the reason it did not when ctx ends.
func (r *replica) awaitReady(ctx context.Context, dial dialFunc, locks <-chan lockEvent, owned func() error) error {
	for !r.locked() {
		select {
		case <-locks:
		case <-ctx.Done():
			return errReadinessTimeout
		}
	}
	// A program may write its lock file a moment before it binds (of-watchdog does), so
	// a refused connection is tried again after a short, growing pause.
	for pause := time.Millisecond; ; pause = min(2*pause, 50*time.Millisecond) {
		if dial(ctx, r.endpoint.Addr) == nil {
			// Whoever accepted must be the replica (portowner.go); someone else on its
			// port will not go away, so the replica is given up at once.
			return owned()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", errReadinessTimeout, errNotListening)
		case <-time.After(pause):
		}
	}
}

// locked reports whether the lock file exists. Events only say when to look: the file
// is what counts, since a full queue may drop an event.
func (r *replica) locked() bool {
	// Lstat: the replica may make its lock file a link, which the daemon does not follow.
	_, err := os.Lstat(filepath.Join(r.tmp(), filepath.Base(r.spec.LockFile)))
	return err == nil
}

// serve watches a ready replica until it exits or is told to leave. A removed lock file,
// or a port dead on two probes in a row, makes it unhealthy: the controller starts a
// replacement and retires this one once that is ready. A port that someone else holds
// (the replica closed its listener, another process bound the port) ends it at once:
// requests must not go on to whoever that is.
func (r *replica) serve(dial dialFunc, p *process, locks <-chan lockEvent, events chan<- event, owned func() error, log *slog.Logger) error {
	var probe <-chan time.Time
	if r.spec.HealthInterval > 0 {
		t := time.NewTicker(r.spec.HealthInterval)
		defer t.Stop()
		probe = t.C
	}
	dead := 0
	for {
		select {
		case ev := <-locks:
			if ev.name == filepath.Base(r.spec.LockFile) && !r.locked() {
				events <- event{kind: evUnhealthy, r: r, err: errLockRemoved}
			}
		case <-probe:
			if alive(dial, r.endpoint.Addr) {
				dead = 0
				if err := owned(); errors.Is(err, errPortTaken) {
					log.Warn("killing replica", "reason", err)
					p.kill()
					return err
				}
			} else if dead++; dead == 2 {
				events <- event{kind: evUnhealthy, r: r, err: errNotAlive}
			}
		case <-p.ended:
			// Out of routing at once: the cleanup of its group takes a moment, and a
			// request sent to it meanwhile, over a connection it had left open, would
			// fail.
			r.endpoint.leave()
			<-p.exited
			return p.exitError()
		case <-r.stop:
			return r.leave(p, log)
		}
	}
}

// leave drains and stops the process: it is out of routing already (the controller
// published that), in-flight requests finish within drain_timeout, then the process
// stops with stop_grace.
func (r *replica) leave(p *process, log *slog.Logger) error {
	drain := time.NewTimer(r.spec.DrainTimeout)
	defer drain.Stop()
	select {
	case <-r.endpoint.leave():
	case <-drain.C:
		log.Warn("drain timeout: stopping with requests in flight", "in_flight", r.endpoint.InFlight())
	case <-p.exited:
		return fmt.Errorf("exited while draining: %w", p.exitError())
	}
	p.stop(r.spec.StopGrace)
	return nil
}

// launch creates the replica's directories and says how to start its program.
func (s *Supervisor) launch(r *replica, out output, log *slog.Logger) (*launch, error) {
	spec := r.spec
	home, err := s.makeDirs(r)
	if err != nil {
		return nil, err
	}
	defer home.close()
	if r.secrets, err = s.secrets.copy(home, spec.Secrets, r.creds); err != nil {
		return nil, err
	}
	secrets := ""
	if r.secrets != nil {
		secrets = r.secrets.d.path
	}
	var fixed []string
	if spec.Fprocess != "" {
		fixed = append(fixed, "fprocess="+spec.Fprocess)
	}
	if secrets != "" && !s.canMountSecrets() {
		fixed = append(fixed, "OPENFAAS_SECRETS_PATH="+secrets)
		secrets = ""
	}
	if s.iso == isolateTmpdir {
		fixed = append(fixed, "TMPDIR="+r.tmp(), "HOME="+r.tmp())
	}
	// Last, so that the user's env cannot point a replica at the wrong port.
	port := strconv.Itoa(r.port)
	fixed = append(fixed, "PORT="+port, "http_port="+port)
	l := &launch{
		argv:   spec.Command,
		dir:    spec.Workdir,
		env:    environ(r.creds, []string{"HOME=/tmp", "HOSTNAME=" + spec.Name}, spec.Env, fixed...),
		creds:  r.creds,
		name:   groupName{kind: cgroup.Functions, unit: spec.Name, instance: r.name()},
		limits: spec.Limits,
		output: out,
		log:    log,
	}
	if spec.Fprocess != "" {
		l.argv = []string{s.exe, "watchdog"}
	}
	if s.iso != isolateTmpdir {
		l.tmp, l.secrets = r.tmp(), secrets
	}
	return l, nil
}

// makeDirs creates STATE/run/NAME/ID, the daemon's alone, and in it the replica's /tmp,
// owned by the replica's account with the mode of /tmp. The replica sees its directories
// through its mounts, so no account needs to pass through the ones above; without mount
// namespaces, it reaches them by path, and its group may pass.
func (s *Supervisor) makeDirs(r *replica) (*dir, error) {
	pass, mode := -1, os.FileMode(0o700)
	if s.iso == isolateTmpdir {
		_, pass = r.creds.ids()
		mode = 0o711
	}
	fn, err := s.run.ensure(r.spec.Name, mode)
	if err != nil {
		return nil, err
	}
	defer fn.close()
	home, err := fn.mkdir(r.name(), mode&0o710, -1, pass)
	if err != nil {
		return nil, err
	}
	uid, gid := r.creds.ids()
	tmp, err := home.mkdir("tmp", 0o777|os.ModeSticky, uid, gid)
	if err != nil {
		home.close()
		return nil, err
	}
	tmp.close()
	return home, nil
}
