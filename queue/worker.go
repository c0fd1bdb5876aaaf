package queue

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"faasd/api"
)

// Invoker runs a request through the gateway's synchronous invocation path: holding it
// while the function wakes, balancing, the function's timeout and metrics. name is the
// function, path the upstream path (escaped).
type Invoker interface {
	Invoke(w http.ResponseWriter, r *http.Request, name, path string)
}

// delivery is what the stages need of a message taken from a stream; jetstream.Msg has it.
type delivery interface {
	Data() []byte
	Metadata() (*jetstream.MsgMetadata, error)
	DoubleAck(context.Context) error
	Nak() error
	NakWithDelay(time.Duration) error
	InProgress() error
}

// sink is where the stages put what outlives a message: a result for the callback stage,
// a failure for the listing.
type sink interface {
	putResult(ctx context.Context, r *Result) error
	putFailure(ctx context.Context, f api.QueueFailure) error
}

// caller is the function stage: it runs a stored call and decides what becomes of it.
type caller struct {
	invoker Invoker
	sink    sink
	retry   Retry
	maxBody int64         // of the answer kept for the callback
	ackWait time.Duration // the engine redelivers a call not acknowledged within this
	now     func() time.Time
	stats   stats
	log     *slog.Logger
}

// handle runs one delivery of a call. The call is acknowledged only once its function
// answered for good and the answer is stored for the callback (or failed for good); a
// crash before that runs it again: at least once.
func (c *caller) handle(ctx context.Context, d delivery) {
	var call Call
	body, err := decode(d.Data(), &call)
	if err != nil {
		// Not something this daemon wrote; no attempt can do better.
		c.log.Error("queue: dropping an unreadable call", "err", err)
		c.ack(d)
		return
	}
	call.Body = body
	attempt := attempts(d)
	log := c.log.With("function", call.Function, "call_id", call.ID, "attempt", attempt)

	stop := keepAlive(d, c.ackWait)
	rec, took := c.invoke(ctx, &call)
	stop()
	if ctx.Err() != nil {
		// Stopping: another host, or this one after its restart, takes it at once.
		_ = d.Nak()
		return
	}
	status := rec.code()
	if again, delay := c.retry.next(attempt, status); again {
		log.Info("queue: function failed, will retry", "status", status, "retry_in", delay.String())
		c.stats.retried(call.Function, "function")
		_ = d.NakWithDelay(delay)
		return
	}
	failed := retryable(status)
	if call.CallbackURL != "" {
		res := &Result{
			CallID: call.ID, Function: call.Function, CallbackURL: call.CallbackURL,
			Status: status, Header: rec.header, Duration: took, Attempts: attempt,
			EnqueuedAt: call.EnqueuedAt, Body: rec.body.Bytes(),
		}
		if rec.truncated {
			res.Header.Set("X-Faasd-Truncated", fmt.Sprintf("kept the first %d bytes", rec.limit))
		}
		if err := c.sink.putResult(ctx, res); err != nil {
			// The call stays; it runs again once the results have room.
			log.Warn("queue: cannot store the result for the callback; the call will run again", "err", err)
			_ = d.NakWithDelay(c.retry.Base)
			return
		}
	}
	if failed {
		log.Warn("queue: call failed", "status", status, "attempts", attempt)
		c.stats.failed(call.Function, "function")
		c.fail(ctx, api.QueueFailure{
			CallID: call.ID, Function: call.Function, Stage: "function", Status: status,
			Error: firstLine(rec.body.Bytes()), Attempts: attempt, CallbackURL: call.CallbackURL,
			EnqueuedAt: call.EnqueuedAt, FailedAt: c.now(),
		}, log)
	} else {
		log.Debug("queue: call done", "status", status, "duration", took.String())
		c.stats.processed(call.Function)
	}
	c.ack(d)
}

// invoke replays the stored request through the gateway's invocation path.
func (c *caller) invoke(ctx context.Context, call *Call) (*recorder, time.Duration) {
	rec := newRecorder(c.maxBody)
	target := "http://" + call.Host + call.Path
	if call.Path == "" {
		target += "/"
	}
	if call.Query != "" {
		target += "?" + call.Query
	}
	start := c.now()
	req, err := http.NewRequestWithContext(ctx, call.Method, target, bytes.NewReader(call.Body))
	if err != nil {
		rec.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(rec, "stored request cannot be replayed: %v", err)
		return rec, 0
	}
	req.Header = call.Header.Clone()
	if req.Header == nil {
		req.Header = http.Header{}
	}
	req.Header.Set("X-Call-Id", call.ID)
	req.Host = call.Host
	req.RemoteAddr = call.RemoteAddr
	if len(call.Body) == 0 {
		req.Body = http.NoBody
	}
	c.invoker.Invoke(rec, req, call.Function, call.Path)
	return rec, c.now().Sub(start)
}

func (c *caller) ack(d delivery) { ackOrLog(d, c.log) }

func (c *caller) fail(ctx context.Context, f api.QueueFailure, log *slog.Logger) {
	if err := c.sink.putFailure(ctx, f); err != nil {
		log.Warn("queue: failure not kept for the listing", "err", err)
	}
}

// ackOrLog acknowledges a message and waits for the engine to confirm, so that a crash
// right after does not run it again.
func ackOrLog(d delivery, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.DoubleAck(ctx); err != nil {
		log.Warn("queue: acknowledgement lost; the message will be delivered again", "err", err)
	}
}

// attempts is the delivery count of a message: 1 the first time.
func attempts(d delivery) int {
	md, err := d.Metadata()
	if err != nil || md.NumDelivered == 0 {
		return 1
	}
	return int(md.NumDelivered)
}

// keepAlive tells the engine, while a message is being handled, that it is not lost, so
// that a function slower than the ack wait is not run twice. It returns the stop function.
func keepAlive(d delivery, ackWait time.Duration) func() {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(ackWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = d.InProgress()
			}
		}
	}()
	return func() { close(done) }
}

// firstLine is a short reason from an answer's body, for the failure listing.
func firstLine(b []byte) string {
	line, _, _ := bytes.Cut(b, []byte{'\n'})
	if len(line) > 200 {
		line = line[:200]
	}
	return string(line)
}
