package supervisor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

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
	dir      string // STATE/run/NAME/ID
	endpoint *Endpoint
	started  time.Time

	// owned by the controller
	state   replicaState
	readyAt time.Time

	stop chan struct{} // closed by the controller to make the replica leave
	pid  int           // owned by the controller, learnt from evStarted
}

func (r *replica) name() string { return strconv.Itoa(r.id) }

// run starts the process and reports its life to events until it has exited.
func (r *replica) run(s *Supervisor, events chan<- event, logs *Logs) {
	log := s.log.With("function", r.spec.Name, "replica", r.id)
	exitErr := r.lifetime(s, events, logs, log)
	s.ports.put(r.port)
	if err := os.RemoveAll(r.dir); err != nil {
		log.Warn("remove replica directory", "err", err)
	}
	events <- event{kind: evExited, r: r, err: exitErr}
}

func (r *replica) lifetime(s *Supervisor, events chan<- event, logs *Logs, log *slog.Logger) error {
	tmp := filepath.Join(r.dir, "tmp")
	cmd, ns, stdout, stderr, err := s.prepare(r, tmp)
	if err != nil {
		return err
	}
	lockEvents, unwatch, err := s.watcher.watch(tmp)
	if err != nil {
		return err
	}
	defer unwatch()
	err = s.spawner.start(cmd, ns)
	// The child holds the write ends now; ours must go, or the readers never see EOF.
	stdout.w.Close()
	stderr.w.Close()
	if err != nil {
		stdout.r.Close()
		stderr.r.Close()
		return fmt.Errorf("start %s: %w", r.spec.Name, err)
	}
	log.Info("replica started", "pid", cmd.Process.Pid, "port", r.port)
	copied := make(chan struct{}, 2)
	go pump(stdout.r, "stdout", r.spec.Name, r.name(), logs, log, copied)
	go pump(stderr.r, "stderr", r.spec.Name, r.name(), logs, log, copied)
	exited := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		exited <- err
	}()
	events <- event{kind: evStarted, r: r, n: cmd.Process.Pid}

	lockName := filepath.Base(r.spec.LockFile)
	lockPath := filepath.Join(tmp, lockName)
	readyCtx, cancelReady := context.WithTimeout(context.Background(), r.spec.ReadinessTimeout)
	defer cancelReady()
	readyDone := readyCtx.Done()
	isReady := false
	confirmed := make(chan error, 1)
	confirming := false
	var health <-chan time.Time
	var healthTicker *time.Ticker
	defer func() {
		if healthTicker != nil {
			healthTicker.Stop()
		}
	}()
	healthFailures := 0

	for {
		select {
		case ev := <-lockEvents:
			if ev.name != lockName {
				continue
			}
			_, statErr := os.Stat(lockPath)
			present := statErr == nil
			switch {
			case present && !isReady && !confirming:
				confirming = true
				go func() { confirmed <- confirmListening(readyCtx, r.endpoint.Addr) }()
			case !present && isReady:
				events <- event{kind: evUnhealthy, r: r, err: errLockRemoved}
			}
		case err := <-confirmed:
			confirming = false
			if err != nil {
				return r.kill(cmd, exited, fmt.Errorf("%w: %w", errReadinessTimeout, err), log)
			}
			isReady = true
			readyDone = nil
			cancelReady()
			events <- event{kind: evReady, r: r}
			if r.spec.HealthInterval > 0 {
				healthTicker = time.NewTicker(r.spec.HealthInterval)
				health = healthTicker.C
			}
		case <-readyDone:
			readyDone = nil
			// While a connect is being confirmed, its failure reports the timeout.
			if !isReady && !confirming {
				return r.kill(cmd, exited, errReadinessTimeout, log)
			}
		case <-health:
			if alive(r.endpoint.Addr) {
				healthFailures = 0
				continue
			}
			if healthFailures++; healthFailures == 2 {
				events <- event{kind: evUnhealthy, r: r, err: errNotAlive}
			}
		case err := <-exited:
			// Children of the replica in its process group go with it.
			signalGroup(cmd, syscall.SIGKILL)
			waitCopied(copied)
			if err == nil {
				err = errors.New("exited with status 0")
			}
			return fmt.Errorf("process exited: %w", err)
		case <-r.stop:
			return r.leave(cmd, exited, copied, log)
		}
	}
}

// leave drains and stops the process: out of routing already (the controller published
// that), in-flight requests finish within drain_timeout, then SIGTERM to the process
// group, then SIGKILL after stop_grace.
func (r *replica) leave(cmd *exec.Cmd, exited <-chan error, copied <-chan struct{}, log *slog.Logger) error {
	drain := time.NewTimer(r.spec.DrainTimeout)
	defer drain.Stop()
	select {
	case <-r.endpoint.leave():
	case <-drain.C:
		log.Warn("drain timeout: stopping with requests in flight", "in_flight", r.endpoint.InFlight())
	case err := <-exited:
		return fmt.Errorf("exited while draining: %w", err)
	}
	signalGroup(cmd, syscall.SIGTERM)
	grace := time.NewTimer(r.spec.StopGrace)
	defer grace.Stop()
	select {
	case <-exited:
	case <-grace.C:
		log.Warn("stop grace over: killing", "pid", cmd.Process.Pid)
		signalGroup(cmd, syscall.SIGKILL)
		<-exited
	}
	// The group may still hold children that ignored SIGTERM.
	signalGroup(cmd, syscall.SIGKILL)
	waitCopied(copied)
	return nil
}

// waitCopied waits for the output pumps to reach EOF. A child that left the process group
// may still hold the pipes; its output is then cut off rather than blocking the replica.
func waitCopied(copied <-chan struct{}) {
	t := time.NewTimer(2 * time.Second)
	defer t.Stop()
	for range 2 {
		select {
		case <-copied:
		case <-t.C:
			return
		}
	}
}

func (r *replica) kill(cmd *exec.Cmd, exited <-chan error, cause error, log *slog.Logger) error {
	log.Warn("killing replica", "reason", cause)
	signalGroup(cmd, syscall.SIGKILL)
	<-exited
	return cause
}

func signalGroup(cmd *exec.Cmd, sig syscall.Signal) {
	// Setpgid made the process the leader of its own group.
	_ = syscall.Kill(-cmd.Process.Pid, sig)
}

func alive(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// pump copies the output of a replica (or a service's process) line by line into its ring
// buffer and the daemon's log. Over-long lines are split rather than held in memory.
func pump(rd *os.File, stream, name, instance string, logs *Logs, log *slog.Logger, done chan<- struct{}) {
	defer func() { done <- struct{}{} }()
	defer rd.Close()
	br := bufio.NewReaderSize(rd, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			text := string(trimNewline(line))
			logs.append(Line{Time: time.Now(), Function: name, Replica: instance, Stream: stream, Text: text})
			log.Info("output", "stream", stream, "line", text)
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrClosed) {
				log.Warn("read replica output", "stream", stream, "err", err)
			}
			return
		}
	}
}

func trimNewline(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}
