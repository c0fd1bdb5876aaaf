package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"faasd/accounts"
	"faasd/cgroup"
	"faasd/config"
)

// readyPoll is how often a starting service is checked. A database opens its port when it
// is ready and tells nobody, so this is the one place where the supervisor polls.
const readyPoll = 100 * time.Millisecond

var (
	errServiceStopped = errors.New("stopped")
	errServiceChanged = errors.New("spec changed")
)

// service is the controller of one service: a goroutine that runs its process again and
// again, with the restart backoff, until told to quit.
type service struct {
	c    *control[*config.Service, ServiceStatus]
	m    *Services
	logs *Logs
	log  *slog.Logger

	// Owned by the goroutine, published as its status.
	state    string
	pid      int
	started  time.Time
	readyAt  time.Time
	restarts int
	backoff  backoff
	oomKills uint64
}

func newService(m *Services, spec *config.Service, logs *Logs, after <-chan struct{}) *service {
	s := &service{
		c:     newControl[*config.Service, ServiceStatus](spec.Name, spec),
		m:     m,
		logs:  logs,
		log:   m.log.With("service", spec.Name),
		state: "starting",
	}
	s.publish()
	go s.loop(after)
	return s
}

func (s *service) ctl() *control[*config.Service, ServiceStatus] { return s.c }

func (s *service) publish() {
	s.c.publish(ServiceStatus{
		Name: s.c.name, State: s.state, PID: s.pid, Started: s.started, ReadyAt: s.readyAt,
		Restarts: s.restarts, Failures: s.backoff.failures, LastError: s.backoff.lastError, RetryAt: s.backoff.retryAt,
		OOMKills: s.oomKills,
	})
	s.m.notify()
}

func (s *service) loop(after <-chan struct{}) {
	defer close(s.c.done)
	// Its cgroups go with it. A service of the same name added meanwhile waits for
	// done, and makes its own.
	defer s.m.groups.forget(cgroup.Services, s.c.name, nil)
	if after != nil {
		// The service removed before this one may still hold the data dir and the port.
		// It was told to stop; wait for it even when told to stop too, so that done
		// means no process of this name is left.
		<-after
		if isClosed(s.c.quit) {
			return
		}
	}
	for attempt := 1; ; attempt++ {
		spec := s.c.spec()
		s.state, s.started, s.restarts = "starting", time.Now(), attempt-1
		s.publish()
		err := s.run(spec, attempt)
		readyAt := s.readyAt
		s.pid, s.readyAt = 0, time.Time{}
		if isOutOfMemory(err) {
			s.oomKills++
		}
		if !errors.Is(err, errServiceStopped) && !errors.Is(err, errServiceChanged) {
			err = s.failed(err, readyAt)
		}
		switch {
		case errors.Is(err, errServiceStopped):
			s.state = "stopping"
			s.publish()
			s.log.Info("service stopped")
			return
		case errors.Is(err, errServiceChanged):
			s.log.Info("spec changed: restarting the service")
			s.backoff.reset()
			attempt = 0 // a new spec counts its restarts afresh
		}
	}
}

// failed records a failed run and waits out the pause before the next one (see pause).
func (s *service) failed(err error, readyAt time.Time) error {
	delay := s.backoff.failed(err, readyAt)
	s.state = "failing"
	s.publish()
	s.log.Warn("service failed", "err", err, "failures", s.backoff.failures, "restart_in", delay)
	return s.pause(delay)
}

// pause waits before the next attempt. It returns errServiceChanged when a changed spec
// cut it short (a new spec deserves an immediate attempt), errServiceStopped when the
// service is told to quit.
func (s *service) pause(d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-s.c.kick:
		return errServiceChanged
	case <-s.c.quit:
		return errServiceStopped
	}
}

// run takes the service through one life: data dir, init when fresh, start, readiness,
// and then until the process exits or the controller is told to stop or restart. It
// returns errServiceStopped, errServiceChanged or why the process failed; s.readyAt
// tells whether it had been ready.
func (s *service) run(spec *config.Service, attempt int) error {
	creds, err := s.m.accounts.resolve(accounts.Service, spec.Name, spec.User)
	if err != nil {
		return err
	}
	// ready_timeout counts from here: init, start, until ready.
	ctx, cancel := context.WithTimeout(context.Background(), spec.ReadyTimeout)
	defer cancel()
	services, fresh, err := prepareDataDir(spec, creds, s.log)
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	defer services.close()
	if fresh && spec.Init != nil {
		if err := s.init(ctx, spec, creds, services); err != nil {
			return err
		}
	}
	p, err := s.start(spec, spec.Command, creds, strconv.Itoa(attempt))
	if err != nil {
		return err
	}
	s.log.Info("service started", "pid", p.pid, "user", creds.name)
	checked := make(chan error, 1)
	go func() { checked <- s.checkReady(ctx, spec, creds) }()
	return s.watch(p, spec, checked, cancel)
}

// watch follows the running process: ready once the check passes, failed when it does
// not in time or the process exits, stopped with grace on quit or a changed spec.
func (s *service) watch(p *process, spec *config.Service, checked <-chan error, cancelCheck func()) error {
	defer cancelCheck()
	for {
		select {
		case err := <-checked:
			checked = nil
			if err != nil {
				p.kill()
				return fmt.Errorf("not ready within ready_timeout (%s): %w", spec.ReadyTimeout, err)
			}
			s.state, s.readyAt = "ready", time.Now()
			s.backoff.retryNow()
			s.log.Info("service ready", "after", s.readyAt.Sub(s.started).Round(time.Millisecond))
			s.publish()
		case <-p.exited:
			return p.exitError()
		case <-s.c.quit:
			cancelCheck()
			return s.stop(p, spec, errServiceStopped)
		case <-s.c.kick:
			if s.c.spec().Equal(spec) {
				continue
			}
			cancelCheck()
			return s.stop(p, spec, errServiceChanged)
		}
	}
}

func (s *service) stop(p *process, spec *config.Service, why error) error {
	s.state = "stopping"
	s.publish()
	p.stop(spec.StopGrace)
	return why
}

// init runs the init command in a fresh data dir. A marker next to the data dir stands
// for an init in progress: when the daemon dies during one, the next attempt knows that
// the data dir holds nothing but that init's leftovers, and starts over.
func (s *service) init(ctx context.Context, spec *config.Service, creds credentials, services *dir) error {
	marker := initMarkerName(spec)
	if err := services.writeFile(marker, nil, 0o600, -1, -1); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	s.log.Info("fresh data dir: running init", "dir", spec.DataDir, "init", spec.Init)
	p, err := s.start(spec, spec.Init, creds, "init")
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	select {
	case <-p.exited:
		if p.err != nil {
			return fmt.Errorf("init: %w", p.err)
		}
	case <-ctx.Done():
		p.kill()
		return fmt.Errorf("init: not done within ready_timeout (%s)", spec.ReadyTimeout)
	case <-s.c.quit:
		p.stop(spec.StopGrace)
		return errServiceStopped
	}
	if err := services.remove(marker); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	s.log.Info("init done")
	return nil
}

// initMarker is the path of the marker of an init in progress.
func initMarker(spec *config.Service) string {
	return filepath.Join(filepath.Dir(spec.DataDir), initMarkerName(spec))
}

func initMarkerName(spec *config.Service) string { return "." + spec.Name + ".init" }

// prepareDataDir creates the data dir, owned by the service's account, and reports whether
// it is fresh: empty, and so in need of init. It returns a handle to the directory of the
// data dirs (STATE/services), where the marker of init goes.
//
// The service writes in its data dir, and its account may be anyone's; the directories
// above are root's, and every step below the state dir is taken by handle, without
// following links (dirs.go).
func prepareDataDir(spec *config.Service, c credentials, log *slog.Logger) (*dir, bool, error) {
	parent := filepath.Dir(spec.DataDir)
	state, err := openStateDir(filepath.Dir(parent))
	if err != nil {
		return nil, false, err
	}
	defer state.close()
	services, err := state.ensure(filepath.Base(parent), 0o711)
	if err != nil {
		return nil, false, err
	}
	if c.set && c.uid != 0 {
		// The service's account reaches its data dir by path, through the state dir,
		// which the daemon keeps to itself otherwise. Passing only: nothing in it
		// becomes listable, and the data dirs of others are their accounts' alone.
		err = letPass(state, services)
	}
	var fresh bool
	if err == nil {
		fresh, err = prepareIn(services, spec, c, log)
	}
	if err != nil {
		services.close()
		return nil, false, err
	}
	return services, fresh, nil
}

// prepareIn does prepareDataDir's work in the directory of the data dirs.
func prepareIn(services *dir, spec *config.Service, c credentials, log *slog.Logger) (fresh bool, err error) {
	name := filepath.Base(spec.DataDir)
	interrupted, err := services.exists(initMarkerName(spec))
	if err != nil {
		return false, err
	}
	if interrupted {
		log.Warn("an earlier init did not finish: starting the data dir over", "dir", spec.DataDir)
		// RemoveAll opens each directory relative to its parent without following
		// links, so nothing the service left there leads it elsewhere.
		if err := os.RemoveAll(spec.DataDir); err != nil {
			return false, err
		}
	}
	uid, gid := c.ids()
	data, err := services.mkdir(name, 0o700, uid, gid)
	if errors.Is(err, fs.ErrExist) {
		if data, err = services.sub(name); err == nil {
			if err = ownedBy(data, c); err != nil {
				data.close()
			}
		}
	}
	if err != nil {
		return false, err
	}
	defer data.close()
	names, err := data.f.Readdirnames(1)
	if err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	return len(names) == 0, nil
}

// ownedBy checks that an existing data dir belongs to the account the service runs as now:
// after a change of user, the service could not use its files.
func ownedBy(data *dir, c credentials) error {
	st, err := data.stat()
	if err != nil {
		return err
	}
	uid, gid := os.Geteuid(), os.Getegid()
	if c.set {
		uid, gid = c.uid, c.gid
	}
	if int(st.Uid) != uid {
		return fmt.Errorf("%s belongs to uid %d, but the service runs as uid %d: give it to that account (chown -R %d:%d %s) or remove it to start afresh", data.path, st.Uid, uid, uid, gid, data.path)
	}
	return nil
}

// checkReady returns nil once the service passes its readiness check, or the last
// reason it did not when ctx ends.
func (s *service) checkReady(ctx context.Context, spec *config.Service, creds credentials) error {
	if spec.ReadyTCP == "" && spec.ReadyCommand == nil {
		return nil
	}
	t := time.NewTicker(readyPoll)
	defer t.Stop()
	for {
		var err error
		if spec.ReadyTCP != "" {
			err = s.m.dial(ctx, spec.ReadyTCP)
		} else {
			err = s.runCheck(ctx, spec, creds)
		}
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-t.C:
		}
	}
}

// runCheck runs ready_command once. Its output only matters when it fails, so it is kept
// for the error instead of filling the logs with every attempt. A check that hangs is
// killed, with its children, when ctx ends.
func (s *service) runCheck(ctx context.Context, spec *config.Service, creds credentials) error {
	out := &lineBuffer{max: 512}
	if err := s.m.procs.run(ctx, s.launch(spec, spec.ReadyCommand, creds, "check", out)); err != nil {
		if msg := strings.TrimSpace(out.String()); msg != "" {
			return fmt.Errorf("ready_command: %w: %s", err, msg)
		}
		return fmt.Errorf("ready_command: %w", err)
	}
	return nil
}

// start starts one of the service's programs; run names it in the logs: "init", or the
// attempt's number.
func (s *service) start(spec *config.Service, argv []string, creds credentials, run string) (*process, error) {
	out := logOutput{logs: s.logs, name: spec.Name, instance: run, log: s.log.With("run", run)}
	p, err := s.m.procs.start(s.launch(spec, argv, creds, run, out))
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	s.pid = p.pid
	s.publish()
	return p, nil
}

// launch says how to start one of the service's programs: in its workdir, as its user,
// with the host's /tmp, since a service's files (a database's socket) are meant to be
// shared. HOME and DATA_DIR are its data dir.
func (s *service) launch(spec *config.Service, argv []string, creds credentials, run string, out output) *launch {
	return &launch{
		argv:   argv,
		dir:    spec.Workdir,
		env:    environ(creds, []string{"HOME=" + spec.DataDir}, spec.Env, "DATA_DIR="+spec.DataDir),
		creds:  creds,
		name:   groupName{kind: cgroup.Services, unit: spec.Name, instance: run},
		limits: spec.Limits,
		output: out,
		log:    s.log.With("run", run),
	}
}
