package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"

	"faasd/supervisor"
)

// answerGrace is how long past a function's timeout the client connection stays open for
// the gateway's own answer (504) to be written.
const answerGrace = time.Second

// call is the per-request state the reverse proxy's hooks need.
type call struct {
	route   *supervisor.Route
	c       *counters
	ep      *supervisor.Endpoint
	path    string // upstream path, escaped
	prefix  string // what the gateway's path adds before path, for X-Forwarded-Prefix
	waited  time.Duration
	status  int
	started time.Time
}

type callKey struct{}

// invoke proxies one request to a ready replica of route; path is the upstream path and
// prefix what came before it in the gateway's URL.
func (p *Proxy) invoke(w http.ResponseWriter, r *http.Request, route *supervisor.Route, prefix, path string) {
	start := time.Now()
	spec := route.Spec()
	callID := r.Header.Get("X-Call-Id")
	if callID == "" {
		callID = newCallID()
		r.Header.Set("X-Call-Id", callID)
	}
	r.Header.Set("X-Start-Time", strconv.FormatInt(start.UnixNano(), 10))

	c := p.stats.get(route.Name)
	cl := &call{route: route, c: c, path: path, prefix: prefix, started: start, status: http.StatusBadGateway}
	c.begin()
	defer func() { c.end(cl.status, time.Since(start)) }()

	if r.ContentLength > p.maxBody {
		cl.status = http.StatusRequestEntityTooLarge
		setCallHeaders(w.Header(), r)
		http.Error(w, fmt.Sprintf("request body of %d bytes is over the limit of %d", r.ContentLength, p.maxBody), cl.status)
		return
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(w, r.Body, p.maxBody)
	}
	ctx := r.Context()
	rc := http.NewResponseController(w)
	if !isUpgrade(r) {
		// One timeout per function bounds the whole exchange: waiting for a replica,
		// the upstream call, reading a slow upload and writing to a slow reader.
		deadline := start.Add(spec.Timeout)
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
		// The connection gets a moment more, so that the gateway can still say why.
		_ = rc.SetReadDeadline(deadline.Add(answerGrace))
		_ = rc.SetWriteDeadline(deadline.Add(answerGrace))
		// The server renews the read deadline for the next request on this
		// connection, but not the write deadline.
		defer rc.SetWriteDeadline(time.Time{})
	}
	ep, waited, err := p.acquire(ctx, route, c, nil)
	if err != nil {
		cl.status = p.fail(w, r, route, err)
		return
	}
	cl.ep, cl.waited = ep, waited
	if waited > 0 {
		c.coldStarts.Add(1)
		c.coldWaitNanos.Add(uint64(waited))
	}
	p.rp.ServeHTTP(w, r.WithContext(context.WithValue(ctx, callKey{}, cl)))
}

// newReverseProxy builds the one reverse proxy all invocations share; its hooks find the
// request's call in the context.
func (p *Proxy) newReverseProxy() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite:   rewrite,
		Transport: p.transport,
		// Streamed responses (SSE, chunked) are flushed as they come; the default
		// already does that for bodies of unknown length.
		FlushInterval: 0,
		BufferPool:    bufferPool,
		ModifyResponse: func(resp *http.Response) error {
			return resp.Request.Context().Value(callKey{}).(*call).modifyResponse(resp)
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			cl := r.Context().Value(callKey{}).(*call)
			cl.status = p.fail(w, r, cl.route, err)
		},
		ErrorLog: slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
	}
}

func rewrite(pr *httputil.ProxyRequest) {
	cl := pr.In.Context().Value(callKey{}).(*call)
	out := pr.Out
	out.URL.Scheme = "http"
	out.URL.Host = cl.ep.Addr
	out.Host = ""
	if cl.path == "" {
		out.URL.Path, out.URL.RawPath = "/", ""
	} else if p, err := url.PathUnescape(cl.path); err == nil {
		out.URL.Path, out.URL.RawPath = p, cl.path
	}
	out.URL.RawQuery = pr.In.URL.RawQuery
	// Keep what a proxy in front of us said about the original request, add ourselves.
	if xff := pr.In.Header["X-Forwarded-For"]; len(xff) > 0 {
		out.Header["X-Forwarded-For"] = xff
	}
	inHost, inProto := pr.In.Header.Get("X-Forwarded-Host"), pr.In.Header.Get("X-Forwarded-Proto")
	pr.SetXForwarded()
	if inHost != "" {
		out.Header.Set("X-Forwarded-Host", inHost)
	}
	if inProto != "" {
		out.Header.Set("X-Forwarded-Proto", inProto)
	}
	// Lets an application build links that work behind /function/NAME.
	if cl.prefix != "" {
		out.Header.Set("X-Forwarded-Prefix", cl.prefix)
	}
	// Retries need the body again after a refused connection, and the transport closes
	// a request body on any error.
	if out.Body != nil && out.Body != http.NoBody {
		out.Body = io.NopCloser(out.Body)
	}
}

func (cl *call) modifyResponse(resp *http.Response) error {
	cl.status = resp.StatusCode
	h := resp.Header
	if h.Get("X-Call-Id") == "" {
		h.Set("X-Call-Id", resp.Request.Header.Get("X-Call-Id"))
	}
	if h.Get("X-Start-Time") == "" {
		h.Set("X-Start-Time", resp.Request.Header.Get("X-Start-Time"))
	}
	if cl.waited > 0 {
		h.Set("X-Faasd-Cold-Start", cl.waited.String())
	}
	if h.Get("Content-Type") == "" && resp.StatusCode != http.StatusSwitchingProtocols && resp.StatusCode != http.StatusNoContent {
		if ct := resp.Request.Header.Get("Content-Type"); ct != "" {
			h.Set("Content-Type", ct)
		} else {
			h.Set("Content-Type", "text/plain")
		}
	}
	return nil
}

// fail answers a request that got no response from a replica, and returns its status.
func (p *Proxy) fail(w http.ResponseWriter, r *http.Request, route *supervisor.Route, err error) int {
	var status int
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		status = http.StatusRequestEntityTooLarge
		err = fmt.Errorf("request body is over the limit of %d bytes", mbe.Limit)
	case errors.Is(err, errGone):
		status = http.StatusNotFound
	case errors.Is(err, errTooMany):
		status = http.StatusTooManyRequests
	case errors.Is(err, errWakeLimit):
		status = http.StatusServiceUnavailable
	case r.Context().Err() != nil && errors.Is(r.Context().Err(), context.Canceled):
		// The client went away; nobody reads an answer.
		return 499
	case errors.Is(err, context.DeadlineExceeded):
		status = http.StatusGatewayTimeout
		err = fmt.Errorf("no response within the function's timeout of %s", route.Spec().Timeout)
	default:
		status = http.StatusBadGateway
	}
	p.log.Warn("invocation failed", "function", route.Name, "status", status, "err", err)
	setCallHeaders(w.Header(), r)
	http.Error(w, fmt.Sprintf("function %s: %v", route.Name, err), status)
	return status
}

// setCallHeaders puts the call's id and start time on an answer the gateway writes itself;
// proxied answers get them in modifyResponse unless the function set its own.
func setCallHeaders(h http.Header, r *http.Request) {
	id, start := r.Header.Get("X-Call-Id"), r.Header.Get("X-Start-Time")
	if id == "" {
		id = newCallID()
	}
	if start == "" {
		start = strconv.FormatInt(time.Now().UnixNano(), 10)
	}
	h.Set("X-Call-Id", id)
	h.Set("X-Start-Time", start)
}

// newCallID returns a random UUID (version 4).
func newCallID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}

func isUpgrade(r *http.Request) bool {
	return r.Header.Get("Upgrade") != "" && strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade")
}
