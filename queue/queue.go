// Package queue owns asynchronous invocations: it stores calls durably in NATS JetStream
// (a server embedded in the daemon, or an external one that several hosts share), runs
// them through the gateway's synchronous invocation path with a per-function concurrency
// limit, retries what failed with exponential backoff, and posts results to callbacks.
// Delivery is at least once: a call is acknowledged only after its result was stored for
// the callback, or it failed for good. The package never serves HTTP or starts a process.
package queue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/url"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/nats-io/nats.go/jetstream"

	"faasd/api"
	"faasd/config"
)

// Errors callers branch on.
var (
	ErrFull     = errors.New("the queue is full")
	ErrTooLarge = errors.New("the request is too large for the queue")
	ErrClosed   = errors.New("the queue is stopping")
)

// Functions tells the queue a function's concurrency limit (0: the [queue] default).
type Functions interface {
	MaxInflight(name string) (int, bool)
}

// Options configure a Queue.
type Options struct {
	Config    config.Queue
	Dir       string // where the embedded engine stores: STATE/queue
	Invoker   Invoker
	Functions Functions
	Metrics   *metrics.Set // counters go here; nil: a private set
	Logger    *slog.Logger
	Now       func() time.Time
}

// scanInterval is how often the queue looks for functions with calls that no worker on
// this host serves yet (calls stored by other hosts, or before a restart), and for
// changed limits.
const scanInterval = 3 * time.Second

// callbackConcurrency bounds the callbacks being posted at once, over all functions.
const callbackConcurrency = 32

// Queue is the daemon's queue of asynchronous calls. Its engine starts on first use, or
// at once when there are calls from before or the engine is an external server, so that
// a daemon whose functions are never called asynchronously pays nothing for it.
type Queue struct {
	cfg   config.Queue
	dir   string
	fns   Functions
	log   *slog.Logger
	now   func() time.Time
	stats stats
	call  caller
	note  notifier

	// ctx is every handler's; it ends when a stop runs out of patience.
	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	eng       *engine
	starting  chan struct{} // closed when a start attempt ends
	startErr  error
	closed    bool
	workers   map[string]*puller // calls, by function
	callbacks *puller
	ensure    sync.Mutex     // one consumer change at a time
	loops     sync.WaitGroup // pull loops
	handlers  sync.WaitGroup // messages being handled
	scanStop  chan struct{}
}

// New builds a queue; nothing starts until Start or the first Enqueue.
func New(opts Options) *Queue {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.NewSet()
	}
	ctx, cancel := context.WithCancel(context.Background())
	q := &Queue{
		cfg: opts.Config, dir: opts.Dir, fns: opts.Functions, log: opts.Logger, now: opts.Now,
		stats: stats{opts.Metrics}, ctx: ctx, cancel: cancel,
		workers: map[string]*puller{}, scanStop: make(chan struct{}),
	}
	retry := Retry{MaxAttempts: opts.Config.MaxAttempts, Base: opts.Config.RetryBase, Max: opts.Config.RetryMax}
	q.call = caller{
		invoker: opts.Invoker, sink: q, retry: retry, maxBody: opts.Config.MaxBodyBytes,
		ackWait: opts.Config.AckWait, now: opts.Now, stats: q.stats, log: opts.Logger,
	}
	q.note = notifier{
		client: callbackClient(opts.Config),
		sink:   q, retry: retry, now: opts.Now, stats: q.stats, log: opts.Logger,
	}
	return q
}

// CheckCallback says why a callback URL is refused before its call is stored, or
// returns nil; where it may connect is checked again on every connection.
func (q *Queue) CheckCallback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("want an absolute http or https URL")
	}
	return q.cfg.CallbackAllow.Host(u.Hostname())
}

// MaxBodyBytes is the largest body an asynchronous call may have.
func (q *Queue) MaxBodyBytes() int64 { return q.cfg.MaxBodyBytes }

// Start starts the engine in the background if there is work waiting for it: an external
// server (other hosts may have stored calls), other hosts connecting to the embedded one
// (listen), or calls stored before a restart.
func (q *Queue) Start() {
	if q.cfg.URL == "" && q.cfg.Listen == "" {
		if _, err := os.Stat(q.dir); err != nil {
			q.log.Debug("queue: idle until the first asynchronous call")
			return
		}
	}
	go func() {
		if _, err := q.engine(q.ctx); err != nil && !errors.Is(err, ErrClosed) {
			q.log.Error("queue: not started; the next asynchronous call tries again", "err", err)
		}
	}()
}

// engine returns the running engine, starting it if needed. Concurrent callers share one
// start; a failed start is tried again by the next caller.
func (q *Queue) engine(ctx context.Context) (*engine, error) {
	q.mu.Lock()
	if q.eng != nil || q.closed {
		e := q.eng
		q.mu.Unlock()
		if e == nil {
			return nil, ErrClosed
		}
		return e, nil
	}
	if q.starting == nil {
		done := make(chan struct{})
		q.starting = done
		go q.start(done)
	}
	done := q.starting
	q.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.eng == nil {
		return nil, q.startErr
	}
	return q.eng, nil
}

func (q *Queue) start(done chan struct{}) {
	defer close(done)
	began := time.Now()
	ctx, cancel := context.WithTimeout(q.ctx, time.Minute)
	defer cancel()
	e, err := startEngine(ctx, q.cfg, q.dir, q.log)
	q.mu.Lock()
	q.starting = nil
	switch {
	case err != nil:
		q.startErr = err
	case q.closed:
		q.startErr = ErrClosed
	default:
		q.eng = e
	}
	q.mu.Unlock()
	if err != nil {
		return
	}
	if q.eng != e {
		e.close()
		return
	}
	q.log.Info("queue started", "engine", e.name(), "dir", q.dir, "url", q.cfg.URL, "took", time.Since(began).String())
	if err := q.startCallbacks(e); err != nil && !errors.Is(err, ErrClosed) {
		q.log.Error("queue: callbacks not delivered until a restart", "err", err)
	}
	go q.scanLoop(e)
}

// Enqueue stores a call durably; when it returns nil the call will run at least once.
func (q *Queue) Enqueue(ctx context.Context, c *Call) error {
	if int64(len(c.Body)) > q.cfg.MaxBodyBytes {
		return ErrTooLarge
	}
	e, err := q.engine(ctx)
	if err != nil {
		return err
	}
	data, err := encode(c, c.Body)
	if err != nil {
		return err
	}
	if _, err := e.js.Publish(ctx, callSubject+c.Function, data, jetstream.WithMsgID(c.ID), jetstream.WithExpectStream(callStream)); err != nil {
		switch {
		case isFull(err):
			return ErrFull
		case isTooLarge(err):
			return ErrTooLarge
		}
		return fmt.Errorf("queue: store call: %w", err)
	}
	q.stats.enqueued(c.Function)
	q.ensureWorker(e, c.Function)
	return nil
}

// Info is the queue's state for /system/info.
func (q *Queue) Info(ctx context.Context) api.QueueInfo {
	e, _ := q.running()
	q.mu.Lock()
	err := q.startErr
	q.mu.Unlock()
	engine := "nats-embedded"
	if q.cfg.URL != "" {
		engine = "nats"
	}
	if e == nil {
		info := api.QueueInfo{Engine: engine, State: "idle", MaxMessages: q.cfg.MaxMessages, MaxBytes: q.cfg.MaxBytes}
		if err != nil && !errors.Is(err, ErrClosed) {
			info.State, info.Error = "error", err.Error()
		}
		return info
	}
	info, err := e.snapshot(ctx, q.now(), q.served())
	if err != nil {
		info.State, info.Error = "error", err.Error()
	}
	return info
}

// WriteMetrics writes the queue's gauges (depth and oldest call per function, totals);
// nothing while the engine has not started.
func (q *Queue) WriteMetrics(w io.Writer) {
	e, err := q.running()
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	info, err := e.snapshot(ctx, q.now(), q.served())
	if err != nil {
		q.log.Warn("queue: metrics", "err", err)
		return
	}
	writeGauges(w, info)
}

// served lists the functions whose calls this host runs.
func (q *Queue) served() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Collect(maps.Keys(q.workers))
}

// Pause stops taking calls and callbacks from the queue; those being handled go on, and
// those already taken but not started go back. It is what a stopping daemon does first,
// before its replicas go.
func (q *Queue) Pause() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	q.closed = true
	close(q.scanStop)
	for _, p := range q.workers {
		p.iter.Drain()
	}
	if q.callbacks != nil {
		q.callbacks.iter.Drain()
	}
}

// Close pauses, waits until ctx ends for the calls being handled, then hands the others
// back to the queue (they run again after a restart, or on another host) and stops the
// engine.
func (q *Queue) Close(ctx context.Context) {
	q.Pause()
	done := make(chan struct{})
	go func() {
		// Pull loops end once their handlers made room for the messages they still hold.
		q.loops.Wait()
		q.handlers.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		q.log.Warn("queue: calls still running at stop; they will run again")
		q.cancel()
		<-done
	}
	q.cancel()
	q.mu.Lock()
	e, starting := q.eng, q.starting
	q.mu.Unlock()
	if starting != nil {
		<-starting
		e, _ = q.running()
	}
	if e != nil {
		e.close()
	}
}
