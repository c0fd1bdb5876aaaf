package queue

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/nats-io/nats.go/jetstream"

	"faasd/api"
)

// stats are the queue's counters, in the gateway's metrics registry beside the
// synchronous ones.
type stats struct{ set *metrics.Set }

func (s stats) inc(metric, fn, extra string) {
	s.set.GetOrCreateCounter(fmt.Sprintf(`%s{function_name=%q%s}`, metric, fn+"."+api.Namespace, extra)).Inc()
}

func (s stats) enqueued(fn string)  { s.inc("faasd_queue_enqueued_total", fn, "") }
func (s stats) processed(fn string) { s.inc("faasd_queue_processed_total", fn, "") }
func (s stats) delivered(fn string) { s.inc("faasd_queue_callbacks_delivered_total", fn, "") }
func (s stats) retried(fn, stage string) {
	s.inc("faasd_queue_retried_total", fn, fmt.Sprintf(",stage=%q", stage))
}
func (s stats) failed(fn, stage string) {
	s.inc("faasd_queue_failed_total", fn, fmt.Sprintf(",stage=%q", stage))
}

// snapshot reads the queue's state from the engine: totals, and each function's depth
// and the age of its oldest call. The functions in known are listed even with no calls,
// so that their gauges go to zero instead of vanishing.
func (e *engine) snapshot(ctx context.Context, now time.Time, known []string) (api.QueueInfo, error) {
	info := api.QueueInfo{Engine: e.name(), State: "running"}
	calls, err := e.calls.Info(ctx, jetstream.WithSubjectFilter(callSubject+"*"))
	if err != nil {
		return info, fmt.Errorf("queue: %w", err)
	}
	info.Messages, info.Bytes = calls.State.Msgs, calls.State.Bytes
	info.MaxMessages, info.MaxBytes = calls.Config.MaxMsgs, calls.Config.MaxBytes
	subjects := maps.Clone(calls.State.Subjects)
	if subjects == nil {
		subjects = map[string]uint64{}
	}
	for _, fn := range known {
		subjects[callSubject+fn] += 0
	}
	for _, subject := range slices.Sorted(maps.Keys(subjects)) {
		fn := api.QueueFunction{Name: strings.TrimPrefix(subject, callSubject), Depth: subjects[subject]}
		if fn.Depth == 0 {
			info.Functions = append(info.Functions, fn)
			continue
		}
		if oldest, err := e.calls.GetMsg(ctx, calls.State.FirstSeq, jetstream.WithGetMsgSubject(subject)); err == nil {
			fn.OldestSeconds = max(now.Sub(oldest.Time).Seconds(), 0)
		}
		info.Functions = append(info.Functions, fn)
	}
	if results, err := e.results.Info(ctx); err == nil {
		info.Callbacks = results.State.Msgs
	}
	if failures, err := e.failures.Info(ctx); err == nil {
		info.Failed = failures.State.Msgs
	}
	return info, nil
}

// writeGauges writes what snapshot read as Prometheus gauges.
func writeGauges(w io.Writer, info api.QueueInfo) {
	for _, fn := range info.Functions {
		label := fmt.Sprintf(`{function_name=%q}`, fn.Name+"."+api.Namespace)
		metrics.WriteGaugeUint64(w, "faasd_queue_depth"+label, fn.Depth)
		metrics.WriteGaugeFloat64(w, "faasd_queue_oldest_message_age_seconds"+label, fn.OldestSeconds)
	}
	metrics.WriteGaugeUint64(w, "faasd_queue_messages", info.Messages)
	metrics.WriteGaugeUint64(w, "faasd_queue_bytes", info.Bytes)
	metrics.WriteGaugeUint64(w, "faasd_queue_max_messages", uint64(max(info.MaxMessages, 0)))
	metrics.WriteGaugeUint64(w, "faasd_queue_max_bytes", uint64(max(info.MaxBytes, 0)))
	metrics.WriteGaugeUint64(w, "faasd_queue_callbacks_pending", info.Callbacks)
	metrics.WriteGaugeUint64(w, "faasd_queue_failures_kept", info.Failed)
}
