package proxy

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"syscall"
	"time"

	"faasd/supervisor"
)

// answerGrace is how long past a function's timeout the client connection stays open for
// the gateway's own answer (504) to be written.
const answerGrace = time.Second

// call is one invocation as it goes through the gateway. It lives on the stack of the
// goroutine serving the request.
type call struct {
	p        *Proxy
	w        http.ResponseWriter
	r        *http.Request
	route    *supervisor.Route
	c        *counters
	path     string // upstream path, escaped
	prefix   string // what the gateway's path adds before path, for X-Forwarded-Prefix
	id       string // X-Call-Id
	start    time.Time
	startStr string    // X-Start-Time: start in Unix nanoseconds
	deadline time.Time // the function's timeout, until a protocol switch at most
	upgrade  bool

	body       []byte // a small request body, read whole so that it can be sent again
	streamBody bool   // the body streams from the client while the call runs

	watching  bool          // the exchange is bounded by the deadline alone and watches the client
	stopWatch func() bool   // ends the watch on the client's context; false: it fired
	watcher   clientWatcher // on connections served here: makes the context end when the client leaves

	waited      time.Duration // held while the function had no ready replica
	status      int
	wroteHeader bool // the response has started: errors can only cut it short
}

// clientWatcher is a ResponseWriter whose request context does not by itself end when
// the client leaves, until asked to watch (the fast path's).
type clientWatcher interface{ watchClient() }

func (p *Proxy) notFound(w http.ResponseWriter, r *http.Request, name string) {
	setCallHeaders(w.Header(), r)
	answerNow(w)
	http.Error(w, "error finding function "+name+": no such function", http.StatusNotFound)
}

// answerNow bounds writing an answer the gateway gives without calling a function. On a
// connection the fast path serves, the write deadline an earlier call set may have
// passed since.
func answerNow(w http.ResponseWriter) {
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(answerGrace))
}

// invoke proxies one request to a ready replica of route; path is the upstream path and
// prefix what came before it in the gateway's URL.
func (p *Proxy) invoke(w http.ResponseWriter, r *http.Request, route *supervisor.Route, prefix, path string) {
	cl := call{
		p: p, w: w, r: r, route: route, path: path, prefix: prefix,
		start: time.Now(), status: http.StatusBadGateway,
		c: p.stats.get(route.Name),
	}
	cl.id, cl.startStr = callStamp(r.Header.Get("X-Call-Id"), cl.start)
	cl.watcher, _ = w.(clientWatcher)
	if f := route.Failing(); f != nil {
		// Turned away before it counts as load: the scaler would otherwise start more
		// replicas of what fails, and each of its scales would cut the backoff short.
		cl.status = p.fail(&cl, &failingError{f})
		cl.c.turnedAway(cl.status, time.Since(cl.start))
		return
	}
	cl.c.begin()
	defer func() { cl.c.end(cl.status, time.Since(cl.start)) }()

	if r.ContentLength > p.maxBody {
		cl.status = p.fail(&cl, fmt.Errorf("request body of %d bytes is over the limit of %d", r.ContentLength, p.maxBody))
		return
	}
	cl.upgrade = isUpgrade(r)
	if timeout := route.Spec().Timeout; timeout > 0 {
		// One timeout per function bounds the whole exchange: waiting for a replica,
		// the upstream call, reading a slow upload and writing to a slow reader. A
		// protocol switch is bounded until the replica agrees to it (tunnel).
		cl.deadline = cl.start.Add(timeout)
		rc := http.NewResponseController(w)
		// The connection gets a moment more, so that the gateway can still say why.
		_ = rc.SetReadDeadline(cl.deadline.Add(answerGrace))
		_ = rc.SetWriteDeadline(cl.deadline.Add(answerGrace))
		// The server renews the read deadline for the next request on this
		// connection, but not the write deadline.
		defer rc.SetWriteDeadline(time.Time{})
	}
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		if r.ContentLength > 0 && r.ContentLength <= inlineBody {
			bp := smallBufs.Get().(*[]byte)
			defer smallBufs.Put(bp)
			n, err := io.ReadFull(r.Body, (*bp)[:r.ContentLength])
			if err != nil {
				cl.status = p.fail(&cl, &clientBodyError{err})
				return
			}
			cl.body = (*bp)[:n]
		} else {
			cl.streamBody = true
		}
	}

	ep, waited, err := p.acquire(r.Context(), cl.deadline, route, cl.c, nil, cl.watcher)
	if err != nil {
		cl.status = p.fail(&cl, err)
		return
	}
	if waited > 0 {
		cl.waited = waited
		cl.c.coldStarts.Add(1)
		cl.c.coldWaitNanos.Add(uint64(waited))
	}
	if err := p.forward(&cl, ep); err != nil {
		if cl.wroteHeader {
			var we *clientWriteError
			if !errors.As(err, &we) {
				p.log.Warn("invocation cut short", "function", route.Name, "err", err)
			}
			// Too late for an answer of our own: a client of the server must see the
			// response cut short rather than ended cleanly. As in httputil.ReverseProxy,
			// only a server's handler panics for that; another caller (the queue's
			// workers, through Invoke) keeps what arrived.
			if r.Context().Value(http.ServerContextKey) != nil {
				panic(http.ErrAbortHandler)
			}
			return
		}
		cl.status = p.fail(&cl, err)
	}
}

// forward sends the call to ep and relays the answer. A refused connection means the
// replica died before any byte was sent, so the call goes to another replica; a reused
// connection the replica closed unanswered is tried again for requests that can be
// replayed. Nothing else is retried, since the replica may have acted on the request.
func (p *Proxy) forward(cl *call, ep *supervisor.Endpoint) error {
	var tried []*supervisor.Endpoint
	for {
		cp := p.transport.pool(ep)
		u, err := cp.get(cl.r.Context(), cl.start, cl.deadline, !cl.replayable())
		if err != nil {
			ep.Release()
			if !errors.Is(err, syscall.ECONNREFUSED) {
				return &upstreamError{err}
			}
			tried = append(tried, ep)
			next, waited, aerr := p.acquire(cl.r.Context(), cl.deadline, cl.route, cl.c, tried, cl.watcher)
			if aerr != nil {
				return errors.Join(err, aerr)
			}
			ep = next
			cl.waited += waited
			continue
		}
		reuse, retry, err := cl.exchange(u)
		if cl.stopWatch != nil && !cl.stopWatch() {
			reuse = false // the client left and the connection was aborted
		}
		if reuse {
			cp.put(u, time.Now())
		} else {
			u.conn.Close()
		}
		if retry {
			continue
		}
		// The replica's in-flight count ends when the response body does, so that a
		// drain waits for streamed responses to finish.
		ep.Release()
		return err
	}
}

// setResponseHeaders adds what the gateway says about the call to a proxied response:
// the call's id and start time unless the function set its own, how long the call was
// held, and a Content-Type when the function gave none.
func (cl *call) setResponseHeaders(h http.Header, status int) {
	id, start := h["X-Call-Id"], h["X-Start-Time"]
	if noValue(id) || noValue(start) {
		vals := []string{cl.id, cl.startStr}
		if noValue(id) {
			h["X-Call-Id"] = vals[0:1:1]
		}
		if noValue(start) {
			h["X-Start-Time"] = vals[1:2:2]
		}
	}
	if cl.waited > 0 {
		h.Set("X-Faasd-Cold-Start", cl.waited.String())
	}
	if noValue(h["Content-Type"]) && status != http.StatusSwitchingProtocols && status != http.StatusNoContent {
		if ct := cl.r.Header.Get("Content-Type"); ct != "" {
			h.Set("Content-Type", ct)
		} else {
			h.Set("Content-Type", "text/plain")
		}
	}
}

func noValue(v []string) bool { return len(v) == 0 || v[0] == "" }

// fail answers a call that got no response from a replica, and returns its status.
func (p *Proxy) fail(cl *call, err error) int {
	var (
		status int
		mbe    *http.MaxBytesError
		ne     net.Error
		be     *clientBodyError
		fe     *failingError
		level  = slog.LevelWarn
	)
	switch {
	case cl.r.ContentLength > p.maxBody:
		status = http.StatusRequestEntityTooLarge
	case errors.As(err, &mbe):
		status = http.StatusRequestEntityTooLarge
		err = fmt.Errorf("request body is over the limit of %d bytes", mbe.Limit)
	case errors.Is(err, errGone):
		status = http.StatusNotFound
	case errors.Is(err, errTooMany):
		status = http.StatusTooManyRequests
	case errors.Is(err, errWakeLimit):
		status = http.StatusServiceUnavailable
	case errors.As(err, &fe):
		status = http.StatusServiceUnavailable
		// The supervisor logs each failure; a line per call turned away would flood.
		err, level = fe, slog.LevelDebug
	case errors.Is(cl.r.Context().Err(), context.Canceled):
		// The client went away; nobody reads an answer.
		return 499
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		status = http.StatusGatewayTimeout
		err = fmt.Errorf("no response within the function's timeout of %s", cl.route.Spec().Timeout)
	case errors.As(err, &be):
		status = http.StatusBadRequest
	default:
		status = http.StatusBadGateway
	}
	p.log.Log(cl.r.Context(), level, "invocation failed", "function", cl.route.Name, "status", status, "err", err)
	answerNow(cl.w)
	h := cl.w.Header()
	clear(h)
	if fe != nil {
		h.Set("Retry-After", fe.retryAfter())
	}
	if status == http.StatusRequestEntityTooLarge {
		// The rest of the body is not read: the connection cannot carry another request.
		h.Set("Connection", "close")
	}
	h["X-Call-Id"] = []string{cl.id}
	h["X-Start-Time"] = []string{cl.startStr}
	http.Error(cl.w, fmt.Sprintf("function %s: %v", cl.route.Name, err), status)
	return status
}

// setCallHeaders puts the client's call id (or a new one) and the time on an answer the
// gateway writes itself before a call started.
func setCallHeaders(h http.Header, r *http.Request) {
	id, start := callStamp(r.Header.Get("X-Call-Id"), time.Now())
	h.Set("X-Call-Id", id)
	h.Set("X-Start-Time", start)
}

// newCallID returns a random UUID (version 4).
func newCallID() string {
	id, _ := callStamp("", time.Time{})
	return id
}

// callStamp returns a call's id, a new random UUID (version 4) unless the client gave
// one, and its start time as X-Start-Time says it: both out of one allocation.
func callStamp(id string, start time.Time) (string, string) {
	var buf [36 + 20]byte
	s := buf[:0]
	if id == "" {
		// The runtime's generator (ChaCha8, seeded by the kernel): unique ids without
		// a system call or a lock.
		var b [16]byte
		binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
		binary.LittleEndian.PutUint64(b[8:], rand.Uint64())
		b[6] = b[6]&0x0f | 0x40
		b[8] = b[8]&0x3f | 0x80
		s = buf[:36]
		hex.Encode(s[0:8], b[0:4])
		s[8] = '-'
		hex.Encode(s[9:13], b[4:6])
		s[13] = '-'
		hex.Encode(s[14:18], b[6:8])
		s[18] = '-'
		hex.Encode(s[19:23], b[8:10])
		s[23] = '-'
		hex.Encode(s[24:36], b[10:])
	}
	n := len(s)
	both := string(strconv.AppendInt(s, start.UnixNano(), 10))
	if id == "" {
		id = both[:n]
	}
	return id, both[n:]
}

// isUpgrade reports a request to switch protocols that the gateway passes on: a GET of
// HTTP/1.1 without a body, as WebSocket asks. Any other request's Upgrade field is
// dropped like any hop-by-hop field, and the request is a plain call: where a body
// ends and the new protocol starts would be the replica's guess.
func isUpgrade(r *http.Request) bool {
	return r.Method == http.MethodGet && r.ProtoAtLeast(1, 1) && r.ContentLength == 0 &&
		r.Header.Get("Upgrade") != "" && namedIn(r.Header["Connection"], "upgrade")
}
