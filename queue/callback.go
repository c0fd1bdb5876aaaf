package queue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"syscall"
	"time"

	"faasd/api"
	"faasd/config"
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

// callbackClient is the client callbacks are posted with. Every connection it makes is
// checked against [queue] callback_allow with the address it goes to.
func callbackClient(cfg config.Queue) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	// Through a proxy, the address checked would be the proxy's, not the callback's.
	t.Proxy = nil
	t.DialContext = allowedDial(cfg.CallbackAllow)
	return &http.Client{
		Timeout:   cfg.CallbackTimeout,
		Transport: t,
		// A redirect is an answer: the result is not sent on to wherever it points.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// allowedDial dials as a net.Dialer does, refusing each address that allow refuses for
// the host dialed. The check runs on the socket before it connects, with the address
// the name resolved to then, so a name that resolves elsewhere at the time of the call
// (DNS rebinding) is caught, and nothing is sent to a refused address.
func allowedDial(allow config.CallbackAllow) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		d := net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second,
			Control: func(_, address string, _ syscall.RawConn) error {
				ap, err := netip.ParseAddrPort(address)
				if err != nil {
					return fmt.Errorf("%w: address %q: %v", config.ErrCallbackRefused, address, err)
				}
				return allow.Addr(host, ap.Addr())
			}}
		return d.DialContext(ctx, network, addr)
	}
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
	// A refused address stays refused: trying again would only ask the same question.
	if again, delay := n.retry.next(attempt, status); again && !errors.Is(err, config.ErrCallbackRefused) {
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
