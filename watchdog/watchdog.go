package watchdog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"faasd/program"
)

// healthPath is answered by the watchdog itself; every other path forks the function.
const healthPath = "/_/health"

// errShutdown is the cause given to every in-flight request when draining runs out of time.
var errShutdown = errors.New("watchdog shutting down")

// Run serves classic-mode invocations on 127.0.0.1:$PORT until ctx is cancelled, then shuts
// down gracefully (see Serve). getenv is os.Getenv in production; logw receives the classic
// watchdog's log lines. Children inherit the process environment (os.Environ), which getenv
// cannot enumerate.
func Run(ctx context.Context, getenv func(string) string, logw io.Writer) error {
	cfg, err := ConfigFromEnv(getenv)
	if err != nil {
		return err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("watchdog: listen on %s: %w", addr, err)
	}
	return Serve(ctx, ln, cfg, logw)
}

// Serve serves classic-mode invocations on ln until ctx is cancelled. It writes cfg.LockFile
// once it accepts connections. When ctx is cancelled it removes the lock file first, keeps
// serving for cfg.HealthcheckInterval, then stops accepting and drains in-flight requests for
// up to cfg.WriteTimeout; requests still running after that have their process groups
// killed. It returns once every child has been reaped. Serve closes ln.
func Serve(ctx context.Context, ln net.Listener, cfg Config, logw io.Writer) error {
	if err := platformSupported(); err != nil {
		ln.Close()
		return err
	}
	if err := cfg.validate(); err != nil {
		ln.Close()
		return err
	}
	s, err := newServer(cfg, logw)
	if err != nil {
		ln.Close()
		return err
	}

	// Request contexts derive from hardCtx rather than ctx: cancelling ctx starts a graceful
	// drain, and only when that runs out of time should running functions be killed.
	hardCtx, hardCancel := context.WithCancelCause(context.WithoutCancel(ctx))
	defer hardCancel(nil)
	srv := &http.Server{
		Handler:        s,
		ReadTimeout:    cfg.ReadTimeout,
		WriteTimeout:   cfg.WriteTimeout,
		MaxHeaderBytes: 1 << 20,
		ErrorLog:       s.log,
		BaseContext:    func(net.Listener) context.Context { return hardCtx },
	}

	version, sha := buildVersion()
	s.log.Printf("Version: %s\tSHA: %s", version, sha)
	s.log.Printf("Timeouts: read: %s write: %s hard: %s health: %s.",
		cfg.ReadTimeout, cfg.WriteTimeout, cfg.ExecTimeout, cfg.HealthcheckInterval)
	if a, ok := ln.Addr().(*net.TCPAddr); ok {
		s.log.Printf("Listening on port: %d", a.Port)
	} else {
		s.log.Printf("Listening on: %s", ln.Addr())
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	// The listener is bound, so connections made from now on queue in its backlog until
	// Serve accepts them: the lock file may announce readiness straight away.
	if cfg.SuppressLock {
		s.log.Println(`Warning: "suppress_lock" is enabled. No automated health-checks will be in place for your function.`)
	} else {
		s.log.Printf("Writing lock-file to: %s", cfg.LockFile)
		if err := os.WriteFile(cfg.LockFile, nil, 0o660); err != nil {
			s.stop(srv, hardCancel, serveErr)
			return fmt.Errorf("watchdog: write lock file (set suppress_lock=true to run without one): %w", err)
		}
	}
	s.accepting.Store(true)

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		serveErr <- err // s.stop waits for it again
		s.markUnhealthy()
		s.stop(srv, hardCancel, serveErr)
		return fmt.Errorf("watchdog: serve: %w", err)
	}

	s.log.Printf("SIGTERM: no new connections in %s", cfg.HealthcheckInterval)
	if err := s.markUnhealthy(); err != nil {
		s.log.Printf("Unable to mark server as unhealthy: %s", err)
	}
	if cfg.HealthcheckInterval > 0 {
		t := time.NewTimer(cfg.HealthcheckInterval)
		<-t.C
	}

	s.log.Printf("No new connections allowed, draining: %d requests", s.inflight.Load())
	drainCtx, cancel := context.Background(), context.CancelFunc(func() {})
	if cfg.WriteTimeout > 0 {
		// A request cannot outlive the write timeout anyway (its child is killed then), so
		// this bound only matters for clients that stop reading.
		drainCtx, cancel = context.WithTimeout(drainCtx, cfg.WriteTimeout)
	}
	err = srv.Shutdown(drainCtx)
	cancel()
	if err != nil {
		s.log.Printf("Drain timed out, killing %d requests", s.inflight.Load())
	}
	s.stop(srv, hardCancel, serveErr)
	s.log.Printf("Exiting. Active connections: %d", s.inflight.Load())
	return nil
}

// server is one watchdog's state; it is the http.Handler.
type server struct {
	cfg     Config
	log     *log.Logger
	env     []string             // base environment of every child
	path    string               // resolved Argv[0]
	sysAttr *syscall.SysProcAttr // shared: exec.Cmd copies it

	accepting atomic.Bool  // false before the lock file exists and once shutdown began
	inflight  atomic.Int64 // invocations being handled
	closed    atomic.Bool  // no invocation may start any more
	idle      chan struct{}
}

func newServer(cfg Config, logw io.Writer) (*server, error) {
	if logw == nil {
		logw = io.Discard
	}
	if cfg.Process == "" {
		cfg.Process = joinArgv(cfg.Argv)
	}
	s := &server{
		cfg: cfg,
		// The classic watchdog logs through the standard logger: "YYYY/MM/DD HH:MM:SS msg".
		// The certifier strips exactly that prefix before matching, so keep it.
		log:     log.New(logw, "", log.LstdFlags),
		env:     cfg.Env,
		sysAttr: childSysProcAttr(),
		idle:    make(chan struct{}, 1),
	}
	if s.env == nil {
		s.env = os.Environ()
	}
	// Resolve the command once, as the account the children run as, rather than on every
	// request. Unlike the classic watchdog, which serves anyway and answers every request
	// with a 500, a command that cannot run stops the watchdog before it writes its lock
	// file: the replica is then never ready and whoever started it says why, and retries
	// it, since a build may yet create the program.
	dir, err := os.Getwd()
	if err != nil {
		return nil, fmt.Errorf("watchdog: working directory: %w", err)
	}
	if s.path, err = program.Resolve(cfg.Argv[0], dir, s.env); err != nil {
		return nil, fmt.Errorf("watchdog: cannot fork fprocess=%q: %w", cfg.Process, err)
	}
	return s, nil
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// A hand-rolled switch instead of http.ServeMux: the mux cleans paths and redirects
	// (//a → /a), and a function must see the path exactly as sent.
	if r.URL.Path == healthPath {
		s.health(w, r)
		return
	}
	s.invoke(w, r)
}

// health answers 200 while the watchdog accepts work and the lock file exists; removing the
// lock file by hand therefore marks the replica unhealthy, as upstream.
func (s *server) health(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	if !s.accepting.Load() || s.cfg.SuppressLock || !fileExists(s.cfg.LockFile) {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, "OK")
}

// markUnhealthy removes the lock file so that whoever watches it stops routing here.
func (s *server) markUnhealthy() error {
	s.accepting.Store(false)
	if s.cfg.SuppressLock {
		return nil
	}
	s.log.Printf("Removing lock-file : %s", s.cfg.LockFile)
	if err := os.Remove(s.cfg.LockFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove lock file: %w", err)
	}
	return nil
}

// stop kills whatever is still running, closes every connection and waits until the last
// invocation has reaped its child and Serve has returned.
func (s *server) stop(srv *http.Server, hardCancel context.CancelCauseFunc, serveErr <-chan error) {
	hardCancel(errShutdown)
	srv.Close()
	s.closed.Store(true)
	for s.inflight.Load() > 0 {
		<-s.idle
	}
	<-serveErr
}

// begin counts an invocation in; it reports false once the server is closed. The order
// (count, then check closed) pairs with stop (set closed, then check the count): either stop
// sees this invocation and waits for it, or the invocation sees closed and backs out.
func (s *server) begin() (n int64, ok bool) {
	n = s.inflight.Add(1)
	if s.closed.Load() {
		s.end()
		return n, false
	}
	return n, true
}

func (s *server) end() {
	if s.inflight.Add(-1) == 0 && s.closed.Load() {
		select {
		case s.idle <- struct{}{}:
		default: // a wake-up is already pending; stop re-checks the count
		}
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func buildVersion() (version, sha string) {
	version, sha = "dev", "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				sha = s.Value
			}
		}
	}
	return version, sha
}
