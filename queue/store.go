package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"

	"faasd/api"
)

// putResult stores a call's answer for the callback stage. Its id is the call's, so that
// a call run twice within the engine's duplicate window is called back once.
func (q *Queue) putResult(ctx context.Context, r *Result) error {
	e, err := q.running()
	if err != nil {
		return err
	}
	data, err := encode(r, r.Body)
	if err != nil {
		return err
	}
	_, err = e.js.Publish(ctx, resultSubject+r.Function, data, jetstream.WithMsgID(r.CallID), jetstream.WithExpectStream(resultStream))
	return err
}

// putFailure keeps a failure for the listing; the oldest go when there are too many.
func (q *Queue) putFailure(ctx context.Context, f api.QueueFailure) error {
	e, err := q.running()
	if err != nil {
		return err
	}
	data, err := json.Marshal(f)
	if err != nil {
		return err
	}
	_, err = e.js.Publish(ctx, failureSubject+f.Function, data, jetstream.WithExpectStream(failureStream))
	return err
}

// Failures lists the calls and callbacks that failed for good, newest first, of one
// function or (fn empty) all of them. An idle queue has none.
func (q *Queue) Failures(ctx context.Context, fn string) ([]api.QueueFailure, error) {
	e, err := q.running()
	if err != nil {
		return []api.QueueFailure{}, nil
	}
	filter := failureSubject + "*"
	if fn != "" {
		filter = failureSubject + fn
	}
	cons, err := e.failures.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		return nil, fmt.Errorf("queue: failures: %w", err)
	}
	batch, err := cons.FetchNoWait(maxFailures)
	if err != nil {
		return nil, fmt.Errorf("queue: failures: %w", err)
	}
	out := []api.QueueFailure{}
	for msg := range batch.Messages() {
		var f api.QueueFailure
		if err := json.Unmarshal(msg.Data(), &f); err == nil {
			out = append(out, f)
		}
	}
	if err := batch.Error(); err != nil {
		return nil, fmt.Errorf("queue: failures: %w", err)
	}
	slices.Reverse(out)
	return out, nil
}

// running is the engine if it has started; it never starts it.
func (q *Queue) running() (*engine, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.eng == nil {
		return nil, errors.New("queue: not started")
	}
	return q.eng, nil
}
