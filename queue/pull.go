package queue

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// puller takes the messages of one consumer and hands each to a handler goroutine, at
// most limit at once. The consumer's MaxAckPending is the same limit, so that it holds
// for all hosts sharing the queue, not only this one.
type puller struct {
	limit int
	iter  jetstream.MessagesContext
}

func (q *Queue) pull(cons jetstream.Consumer, limit int, handle func(context.Context, delivery)) (*puller, error) {
	iter, err := cons.Messages(jetstream.PullMaxMessages(limit))
	if err != nil {
		return nil, err
	}
	p := &puller{limit: limit, iter: iter}
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		iter.Stop()
		return nil, ErrClosed
	}
	// Under the lock that Pause takes, so that Close waits for every loop.
	q.loops.Add(1)
	q.mu.Unlock()
	go func() {
		defer q.loops.Done()
		slots := make(chan struct{}, limit)
		for {
			slots <- struct{}{}
			msg, err := iter.Next()
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return
			}
			if err != nil {
				// Missed heartbeats and the like: the iterator recovers by itself.
				<-slots
				q.log.Debug("queue: pull", "err", err)
				continue
			}
			q.handlers.Add(1)
			go func() {
				defer q.handlers.Done()
				defer func() { <-slots }()
				if q.paused() {
					// Taken just before a stop: back to the queue, not run now.
					_ = msg.Nak()
					return
				}
				handle(q.ctx, msg)
			}()
		}
	}()
	return p, nil
}

func (q *Queue) paused() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closed
}

// ensureWorker starts pulling the calls of a function, or restarts with a changed limit.
// Only a function this host runs gets a worker: hosts sharing an external queue may run
// different sets. A function removed while its worker runs keeps it, and its calls end
// with the gateway's 404 (sent to their callbacks); after a restart its calls wait for it.
func (q *Queue) ensureWorker(e *engine, fn string) {
	n, known := q.fns.MaxInflight(fn)
	limit := cmp.Or(n, q.cfg.MaxInflight)
	q.mu.Lock()
	current, closed := q.workers[fn], q.closed
	q.mu.Unlock()
	if closed || current == nil && !known || current != nil && (current.limit == limit || !known) {
		return
	}
	q.ensure.Lock()
	defer q.ensure.Unlock()
	q.mu.Lock()
	current = q.workers[fn]
	q.mu.Unlock()
	if current != nil && current.limit == limit {
		return
	}
	ctx, cancel := context.WithTimeout(q.ctx, 10*time.Second)
	defer cancel()
	cons, err := e.calls.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       "fn-" + fn,
		FilterSubject: callSubject + fn,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       q.cfg.AckWait,
		MaxAckPending: limit,
		MaxDeliver:    -1, // retries are counted by the worker, which also sends the failure on
	})
	if err != nil {
		q.log.Error("queue: cannot serve a function's calls", "function", fn, "err", err)
		return
	}
	p, err := q.pull(cons, limit, q.call.handle)
	if errors.Is(err, ErrClosed) {
		return
	}
	if err != nil {
		q.log.Error("queue: cannot serve a function's calls", "function", fn, "err", err)
		return
	}
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		p.iter.Drain()
		return
	}
	q.workers[fn] = p
	q.mu.Unlock()
	if current != nil {
		current.iter.Drain()
	}
	q.log.Debug("queue: serving a function's calls", "function", fn, "max_inflight", limit)
}

func (q *Queue) startCallbacks(e *engine) error {
	ctx, cancel := context.WithTimeout(q.ctx, 10*time.Second)
	defer cancel()
	cons, err := e.results.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       "callbacks",
		FilterSubject: resultSubject + "*",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       q.cfg.CallbackTimeout + q.cfg.AckWait,
		MaxAckPending: callbackConcurrency,
		MaxDeliver:    -1,
	})
	if err != nil {
		return fmt.Errorf("queue: callbacks: %w", err)
	}
	p, err := q.pull(cons, callbackConcurrency, q.note.handle)
	if errors.Is(err, ErrClosed) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("queue: callbacks: %w", err)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		p.iter.Drain()
		return nil
	}
	q.callbacks = p
	return nil
}

// scanLoop serves the functions that have calls but no worker here (calls stored before
// a restart, or by other hosts) and applies changed limits.
func (q *Queue) scanLoop(e *engine) {
	t := time.NewTicker(scanInterval)
	defer t.Stop()
	for {
		q.scan(e)
		select {
		case <-q.scanStop:
			return
		case <-t.C:
		}
	}
}

func (q *Queue) scan(e *engine) {
	ctx, cancel := context.WithTimeout(q.ctx, 10*time.Second)
	defer cancel()
	info, err := e.calls.Info(ctx, jetstream.WithSubjectFilter(callSubject+"*"))
	if err != nil {
		q.log.Debug("queue: scan", "err", err)
		return
	}
	fns := map[string]bool{}
	for subject := range info.State.Subjects {
		fns[strings.TrimPrefix(subject, callSubject)] = true
	}
	q.mu.Lock()
	for fn := range q.workers {
		fns[fn] = true
	}
	q.mu.Unlock()
	for fn := range fns {
		q.ensureWorker(e, fn)
	}
}
