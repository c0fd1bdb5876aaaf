package queue

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"faasd/api"
)

// notifier is the callback stage: it POSTs a call's result to the URL the caller gave in
// X-Callback-Url, as OpenFaaS's queue worker does.
type notifier struct {
	client *http.Client
	sink   sink
	retry  Retry
	now    func() time.Time
	stats  stats
	log    *slog.Logger
}

// hopHeaders are the function's answer headers that belong to its connection, not to the
// result passed on.
var hopHeaders = []string{"Connection", "Keep-Alive", "Transfer-Encoding", "Trailer", "Upgrade", "Content-Length", "Proxy-Connection"}

func (n *notifier) handle(ctx context.Context, d delivery) {
	var res Result
	body, err := decode(d.Data(), &res)
	if err != nil {
		n.log.Error("queue: dropping an unreadable result", "err", err)
		ackOrLog(d, n.log)
		return
	}
	res.Body = body
	attempt := attempts(d)
	log := n.log.With("function", res.Function, "call_id", res.CallID, "attempt", attempt, "callback", res.CallbackURL)

	status, err := n.post(ctx, &res)
	if ctx.Err() != nil {
		_ = d.Nak()
		return
	}
	if status >= 200 && status < 300 {
		log.Debug("queue: callback delivered", "status", status)
		n.stats.delivered(res.Function)
		ackOrLog(d, n.log)
		return
	}
	reason := fmt.Sprintf("callback answered %d", status)
	if err != nil {
		reason = err.Error()
	}
	if again, delay := n.retry.next(attempt, status); again {
		log.Info("queue: callback failed, will retry", "err", reason, "retry_in", delay.String())
		n.stats.retried(res.Function, "callback")
		_ = d.NakWithDelay(delay)
		return
	}
	log.Warn("queue: callback failed", "err", reason, "attempts", attempt)
	n.stats.failed(res.Function, "callback")
	if err := n.sink.putFailure(ctx, api.QueueFailure{
		CallID: res.CallID, Function: res.Function, Stage: "callback", Status: status, Error: reason,
		Attempts: attempt, CallbackURL: res.CallbackURL, EnqueuedAt: res.EnqueuedAt, FailedAt: n.now(),
	}); err != nil {
		log.Warn("queue: failure not kept for the listing", "err", err)
	}
	ackOrLog(d, n.log)
}

// post sends the result; status 0 means no answer at all.
func (n *notifier) post(ctx context.Context, res *Result) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, res.CallbackURL, bytes.NewReader(res.Body))
	if err != nil {
		// The URL was checked when the call was accepted; this cannot get better.
		return http.StatusBadRequest, fmt.Errorf("callback URL: %w", err)
	}
	for k, vs := range res.Header {
		req.Header[k] = vs
	}
	for _, h := range hopHeaders {
		req.Header.Del(h)
	}
	req.Header.Set("X-Call-Id", res.CallID)
	req.Header.Set("X-Function-Name", res.Function)
	req.Header.Set("X-Function-Status", strconv.Itoa(res.Status))
	req.Header.Set("X-Duration-Seconds", strconv.FormatFloat(res.Duration.Seconds(), 'f', 6, 64))
	resp, err := n.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, nil
}
