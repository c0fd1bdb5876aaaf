package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// This file serves keep-alive connections that call functions without net/http's server.
//
// net/http's server costs a small call more than the rest of the hop together: per
// request, a goroutine that watches the connection, a context, a dozen allocations,
// deadline resets and header sorting. So the first function call on an HTTP/1.1
// connection takes the connection over (Hijack) before its body is read, and the gateway reads the requests that
// follow on it itself, one at a time, into a request, header map and response writer it
// reuses. A request the fast path does not serve (anything but a function call, or one it
// cannot read plainly: absolute URLs, Expect, upgrades, oversized or odd heads) goes back
// to net/http with the connection, its bytes unread, and stays there.
//
// What net/http gave for free is done here: the client is watched for leaving only once a
// call takes a while (see call.watch), idle and header timeouts are the server's, and a
// shutdown closes idle connections at once and the others after their current request.

// fastConn is one connection the gateway serves itself.
type fastConn struct {
	p      *Proxy
	srv    *http.Server
	conn   net.Conn
	tcp    *net.TCPConn
	br     *bufio.Reader
	bw     *bufio.Writer
	ctx    context.Context // ends when the client leaves
	cancel context.CancelFunc
	busy   atomic.Bool

	req  *http.Request
	url  url.URL
	hdr  http.Header
	vals []string // the header values of the current request
	body fastBody
	w    fastWriter

	watchDone chan struct{} // while the client is watched
	linger    bool          // the last request's body was not read to its end

	// Deadlines as set on conn, and the read deadline a call asked for, set only once
	// the call reads its body (a bodiless call never needs it).
	readSet, writeSet time.Time
	readWanted        time.Time
}

// setReadDeadline and setWriteDeadline update the connection's deadlines when they
// change beyond deadlineStep.
func (fc *fastConn) setReadDeadline(t time.Time, step time.Duration) {
	if t = roundUp(t, step); !t.Equal(fc.readSet) {
		fc.readSet = t
		_ = fc.conn.SetReadDeadline(t)
	}
}

func (fc *fastConn) setWriteDeadline(t time.Time) {
	if t = roundUp(t, deadlineStep); !t.Equal(fc.writeSet) {
		fc.writeSet = t
		_ = fc.conn.SetWriteDeadline(t)
	}
}

const fastReadBuf = 16 << 10 // request heads larger than this go to net/http

// takeOver serves the connection of r, a function call, on the fast path from
// now on, and reports whether it did; false leaves w and r to net/http.
func (p *Proxy) takeOver(w http.ResponseWriter, r *http.Request, serve func(http.ResponseWriter, *http.Request)) bool {
	srv, _ := r.Context().Value(http.ServerContextKey).(*http.Server)
	if srv == nil || r.ProtoMajor != 1 || r.ProtoMinor != 1 || r.TLS != nil || r.Close ||
		isUpgrade(r) || r.Header["Expect"] != nil || (r.ContentLength < 0 && !slices.Equal(r.TransferEncoding, chunkedEncoding)) {
		return false
	}
	if _, back := p.handedBack.Load(r.RemoteAddr); back {
		return false
	}
	select {
	case <-p.closing:
		return false
	default:
	}
	if !p.fastServer.CompareAndSwap(nil, srv) && p.fastServer.Load() != srv {
		return false // one server per proxy: the one connections go back to
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return false
	}
	tcp := tcpConn(conn) // nil: the client is not watched
	fc := &fastConn{p: p, srv: srv, conn: conn, tcp: tcp, hdr: http.Header{}}
	// The values a handler may look for in a request's context on net/http's server.
	ctx := context.WithValue(context.Background(), http.ServerContextKey, srv)
	ctx = context.WithValue(ctx, http.LocalAddrContextKey, r.Context().Value(http.LocalAddrContextKey))
	fc.ctx, fc.cancel = context.WithCancel(ctx)
	var rd io.Reader = conn
	var wr io.Writer = conn
	if tcp != nil {
		if sock, err := newSockIO(tcp); err == nil {
			rd, wr = sock, sock
		}
	}
	if n := brw.Reader.Buffered(); n > 0 {
		// What the client sent ahead (pipelined requests) comes first.
		ahead, _ := brw.Reader.Peek(n)
		rd = io.MultiReader(bytes.NewReader(bytes.Clone(ahead)), rd)
	}
	fc.br = bufio.NewReaderSize(rd, fastReadBuf)
	fc.bw = bufio.NewWriterSize(wr, 4<<10)
	fc.body.br, fc.body.fc = fc.br, fc
	fc.w.fc = fc
	fc.req = &http.Request{}
	*fc.req = *r.WithContext(fc.ctx)
	fc.req.Header = fc.hdr
	for k, v := range r.Header {
		fc.hdr[k] = v
	}
	// net/http has not read the body: it is all in what the connection holds.
	fc.body.reset(r.ContentLength < 0, r.ContentLength)
	if r.ContentLength != 0 {
		fc.req.Body = &fc.body
	}
	fc.busy.Store(true)
	p.fastConns.Store(fc, struct{}{})
	defer p.fastConns.Delete(fc)
	fc.serve(serve)
	return true
}

// tcpConn is the TCP connection under c, if there is one.
func tcpConn(c net.Conn) *net.TCPConn {
	for {
		switch cc := c.(type) {
		case *net.TCPConn:
			return cc
		case interface{ NetConn() net.Conn }:
			c = cc.NetConn()
		default:
			return nil
		}
	}
}

// serve answers the request already in fc.req, then the ones that follow.
func (fc *fastConn) serve(serve func(http.ResponseWriter, *http.Request)) {
	defer func() {
		fc.cancel()
		if fc.linger {
			fc.closeLingering()
		}
		fc.conn.Close()
	}()
	for {
		if !fc.serveOne(serve) {
			return
		}
		fc.busy.Store(false)
		select {
		case <-fc.p.closing:
			return
		default:
		}
		handBack, err := fc.readRequest()
		if err != nil {
			return
		}
		if handBack {
			_ = fc.conn.SetDeadline(zeroTime) // net/http sets only those it uses
			fc.p.handBack(fc.srv, &handoff{Conn: fc.conn, br: fc.br, p: fc.p, remote: fc.req.RemoteAddr})
			fc.conn = nopCloseConn{fc.conn} // net/http owns it now
			return
		}
	}
}

// serveOne answers one request and reports whether the connection may carry another.
func (fc *fastConn) serveOne(serve func(http.ResponseWriter, *http.Request)) (keep bool) {
	w := &fc.w
	w.reset(fc.req)
	defer func() {
		fc.stopWatch()
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				fc.p.log.Error("panic serving a call", "err", v)
			}
			keep = false
		}
	}()
	serve(w, fc.req)
	// A body left unread may still be coming: closing on it would reset the connection
	// before the client reads the answer.
	fc.linger = fc.req.ContentLength != 0 && !fc.body.done
	if !w.finish() || fc.req.Close || fc.ctx.Err() != nil {
		return false
	}
	// What the handler left of the body is read and dropped, up to a point, and within
	// the server's read timeout, as net/http does: a client that promised a body and
	// sends none gets its answer, then the connection closes.
	if fc.linger {
		fc.readWanted = zeroTime
		fc.setReadDeadline(time.Now().Add(fc.readTimeout()), deadlineStep)
		if _, err := io.CopyN(io.Discard, &fc.body, drainBody); err != io.EOF {
			return false
		}
		fc.linger = false
	}
	return true
}

// lingerTime bounds closeLingering, as net/http's server waits 500 ms before it closes
// on a body it did not read.
const lingerTime = 500 * time.Millisecond

// closeLingering half-closes the connection and reads what still comes for a moment, so
// that a client still sending a body sees the answer and a clean end, not a reset.
func (fc *fastConn) closeLingering() {
	if fc.tcp == nil || fc.tcp.CloseWrite() != nil {
		return
	}
	_ = fc.conn.SetReadDeadline(time.Now().Add(lingerTime))
	_, _ = io.Copy(io.Discard, fc.br)
}

// readRequest reads the next request head into fc.req. handBack reports a request the
// fast path leaves to net/http, unread.
func (fc *fastConn) readRequest() (handBack bool, err error) {
	// An idle timeout to the second is precise enough.
	if d := fc.idleTimeout(); d > 0 {
		fc.setReadDeadline(time.Now().Add(d), time.Second)
	} else {
		fc.setReadDeadline(zeroTime, time.Second)
	}
	fc.readWanted = zeroTime
	fc.busy.Store(false)
	var started, headTimed bool
	var head []byte
	for {
		buf, _ := fc.br.Peek(fc.br.Buffered())
		var handBack bool
		if head, handBack = headOf(buf); head != nil {
			break
		}
		if handBack {
			return true, nil
		}
		if started && !headTimed && fc.srv.ReadHeaderTimeout > 0 {
			// Most heads come in one read, and the idle deadline stays as it is (set
			// again only when its second changes); a head that came in part gets the
			// server's header timeout for the rest.
			headTimed = true
			fc.setReadDeadline(time.Now().Add(fc.srv.ReadHeaderTimeout), deadlineStep)
		}
		if _, err := fc.br.Peek(fc.br.Buffered() + 1); err != nil {
			return false, err
		}
		started = true
		fc.busy.Store(true)
	}
	fc.busy.Store(true)
	if !fc.parse(string(head)) {
		return true, nil
	}
	fc.br.Discard(len(head))
	return false, nil
}

// headOf returns the request head that starts buf, its empty line included, or nil while
// buf holds no whole head. handBack reports a head the fast path leaves to net/http: one
// with bare LF line ends, or one larger than its buffer.
func headOf(buf []byte) (head []byte, handBack bool) {
	if i := bytes.Index(buf, []byte("\r\n\r\n")); i >= 0 {
		return buf[:i+4], false
	}
	return nil, len(buf) == fastReadBuf || bytes.Contains(buf, []byte("\n\n"))
}

// readTimeout bounds reading what a request has left to send.
func (fc *fastConn) readTimeout() time.Duration {
	if fc.srv.ReadTimeout > 0 {
		return fc.srv.ReadTimeout
	}
	return fc.srv.ReadHeaderTimeout
}

func (fc *fastConn) idleTimeout() time.Duration {
	if fc.srv.IdleTimeout > 0 {
		return fc.srv.IdleTimeout
	}
	return fc.srv.ReadTimeout
}

// parse fills fc.req from a request head, and reports whether the fast path serves it.
func (fc *fastConn) parse(head string) bool {
	line, rest, _ := strings.Cut(head, "\r\n")
	method, line, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(line, " ")
	if !ok1 || !ok2 || proto != "HTTP/1.1" || !isInvocationMethod(method) || len(target) == 0 || target[0] != '/' {
		return false
	}
	r := fc.req
	clear(fc.hdr)
	fc.vals = fc.vals[:0]
	r.Host, r.Close, r.ContentLength, r.TransferEncoding = "", false, 0, nil
	var length, chunked, host bool
	for {
		var fl string
		fl, rest, _ = strings.Cut(rest, "\r\n")
		if fl == "" {
			break
		}
		k, v, ok := strings.Cut(fl, ":")
		if !ok || k == "" || !validToken(k) {
			return false
		}
		k = http.CanonicalHeaderKey(k)
		v = strings.Trim(v, " \t")
		if !validValue(v) {
			return false
		}
		switch k {
		case "Host":
			if host {
				return false // net/http refuses a second, even after an empty one
			}
			host, r.Host = true, v
			continue
		case "Content-Length":
			n, err := parseLength(v)
			if err != nil || (length && n != r.ContentLength) {
				return false
			}
			length, r.ContentLength = true, n
		case "Transfer-Encoding":
			if !asciiEqualFold(v, "chunked") || chunked {
				return false
			}
			chunked = true
		case "Connection":
			for t := v; len(t) > 0; {
				var tok string
				tok, t = cutToken(t)
				if asciiEqualFold(tok, "close") {
					r.Close = true
				} else if asciiEqualFold(tok, "upgrade") {
					return false
				}
			}
		case "Expect", "Upgrade":
			return false
		}
		fc.vals = append(fc.vals, v)
		if prior, ok := fc.hdr[k]; ok {
			fc.hdr[k] = append(prior, v)
		} else {
			n := len(fc.vals)
			fc.hdr[k] = fc.vals[n-1 : n : n]
		}
	}
	if !validHost(r.Host) || (length && chunked) {
		return false
	}
	if !fc.setURL(target) {
		return false
	}
	if _, ok := fc.p.hostRoute(r); !ok && !strings.HasPrefix(fc.url.Path, "/function/") {
		return false
	}
	r.Method, r.RequestURI = method, target
	fc.body.reset(chunked, r.ContentLength)
	switch {
	case chunked:
		r.ContentLength, r.TransferEncoding, r.Body = -1, chunkedEncoding, &fc.body
	case r.ContentLength > 0:
		r.Body = &fc.body
	default:
		r.Body = http.NoBody
	}
	return true
}

var chunkedEncoding = []string{"chunked"}

// setURL parses an origin-form target into fc.url: plain ones here, the rest by net/url,
// as net/http parses them. A plain path has only the bytes that url.URL.EscapedPath
// leaves as they are, so that a replica sees the path its client sent on the fast path
// as on net/http's.
func (fc *fastConn) setURL(target string) bool {
	u := &fc.url
	*u = url.URL{}
	path, query, hasQuery := strings.Cut(target, "?")
	plain := true
	for i := 0; i < len(path) && plain; i++ {
		c := path[i]
		plain = isAlnum(c) || strings.IndexByte("-_.~$&+,/:;=@", c) >= 0
	}
	for i := 0; i < len(query) && plain; i++ {
		c := query[i]
		plain = c > ' ' && c < 0x7f && c != '%' && c != '#'
	}
	if !plain {
		pu, err := url.ParseRequestURI(target)
		if err != nil {
			return false
		}
		*u = *pu
	} else {
		u.Path, u.RawQuery, u.ForceQuery = path, query, hasQuery && query == ""
	}
	fc.req.URL = u
	return true
}

// validValue rejects control characters in a field value, as net/http does.
func validValue[T string | []byte](v T) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// validHost accepts a Host made of the bytes net/http's server accepts in one (letters,
// digits and "!$%&'()*+,-.:;=[]_~"); anything else is left to net/http to refuse.
func validHost(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; !isAlnum(c) && strings.IndexByte("!$%&'()*+,-.:;=[]_~", c) < 0 {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func validToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isTokenChar(s[i]) {
			return false
		}
	}
	return true
}

// watchClient ends fc.ctx when the client closes its side, for a call that takes a
// while: a goroutine waits until the connection is readable and peeks. Data (the client
// sending on) ends the watch without a verdict.
func (fc *fastConn) watchClient() {
	if fc.watchDone != nil || fc.tcp == nil {
		return
	}
	// The watch waits on the connection within its read deadline: the call's, not what
	// is left of the one for its head.
	if !fc.readWanted.IsZero() {
		fc.setReadDeadline(fc.readWanted, deadlineStep)
		fc.readWanted = zeroTime
	}
	rc, err := fc.tcp.SyscallConn()
	if err != nil {
		return
	}
	done := make(chan struct{})
	fc.watchDone = done
	go func() {
		defer close(done)
		gone := false
		_ = rc.Read(func(fd uintptr) bool {
			var b [1]byte
			n, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
			if errors.Is(err, unix.EAGAIN) {
				return false // wait until readable
			}
			gone = n == 0 || err != nil
			return true
		})
		if gone {
			fc.cancel()
		}
	}()
}

// stopWatch ends a watch before the connection is read again.
func (fc *fastConn) stopWatch() {
	if fc.watchDone == nil {
		return
	}
	fc.setReadDeadline(aLongTimeAgo, deadlineStep)
	<-fc.watchDone
	fc.watchDone = nil
}

// closeFast closes the idle fast connections at shutdown; busy ones close after their
// current request.
func (p *Proxy) closeFast() {
	p.fastConns.Range(func(k, _ any) bool {
		if fc := k.(*fastConn); !fc.busy.Load() {
			_ = fc.conn.SetReadDeadline(aLongTimeAgo) // from another goroutine: not through readSet
		}
		return true
	})
}

// handBack gives a connection to net/http, which serves it from then on.
func (p *Proxy) handBack(srv *http.Server, c *handoff) {
	p.handedBack.Store(c.remote, struct{}{})
	p.handbackOnce.Do(func() {
		p.handbacks = &chanListener{conns: make(chan net.Conn), done: make(chan struct{}), addr: c.LocalAddr()}
		go srv.Serve(p.handbacks)
	})
	select {
	case p.handbacks.conns <- c:
	case <-p.handbacks.done:
		c.Close()
	}
}

// handoff is a connection given back to net/http with what was read of it and not used.
// Its remote address stays in Proxy.handedBack while it is open, so that it is not taken
// over again.
type handoff struct {
	net.Conn
	br     *bufio.Reader
	p      *Proxy
	remote string
	once   sync.Once
}

func (h *handoff) Read(p []byte) (int, error) { return h.br.Read(p) }

func (h *handoff) Close() error {
	h.once.Do(func() { h.p.handedBack.Delete(h.remote) })
	return h.Conn.Close()
}

// CloseWrite lets net/http half-close before it hangs up, as on its own connections.
func (h *handoff) CloseWrite() error {
	if cw, ok := h.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// nopCloseConn is a connection another server owns now.
type nopCloseConn struct{ net.Conn }

func (nopCloseConn) Close() error { return nil }

// chanListener hands net/http connections one by one.
type chanListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	addr  net.Addr
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }

// fastBody is a request body read from the connection: a fixed length or chunked.
type fastBody struct {
	fc       *fastConn
	br       *bufio.Reader
	chunked  bool
	left     int64 // in the body, or in the current chunk
	needCRLF bool  // after a chunk's data
	excess   int64 // framing beyond what the data allows (chunkOverhead)
	done     bool
}

func (b *fastBody) reset(chunked bool, length int64) {
	b.chunked, b.left, b.needCRLF, b.excess, b.done = chunked, length, false, 0, length == 0 && !chunked
	if chunked {
		b.left = 0
	}
}

func (b *fastBody) Close() error { return nil }

func (b *fastBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	if fc := b.fc; !fc.readWanted.IsZero() {
		fc.setReadDeadline(fc.readWanted, deadlineStep)
		fc.readWanted = zeroTime
	}
	if b.left == 0 {
		if !b.chunked {
			b.done = true
			return 0, io.EOF
		}
		if err := b.nextChunk(); err != nil {
			return 0, err
		}
		if b.done {
			return 0, io.EOF
		}
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.br.Read(p)
	b.left -= int64(n)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if b.left == 0 && b.chunked {
		b.needCRLF = true
	}
	if b.left == 0 && !b.chunked && err == nil {
		b.done = true
	}
	return n, err
}

// nextChunk reads a chunk's size line (and the end of the one before), or the trailer,
// by the rules of chunked.go.
func (b *fastBody) nextChunk() error {
	if b.needCRLF {
		crlf, err := b.br.Peek(2)
		if err != nil {
			return unexpected(err)
		}
		if crlf[0] != '\r' || crlf[1] != '\n' {
			return errChunkEnd
		}
		b.br.Discard(2)
		b.needCRLF = false
	}
	line, err := b.br.ReadSlice('\n')
	if err != nil {
		return lineError(err)
	}
	size, err := chunkSize(line)
	if err == nil {
		err = chunkOverhead(&b.excess, len(line), size)
	}
	if err != nil {
		return err
	}
	if size > 0 {
		b.left = size
		return nil
	}
	// The trailer, which a function does not see, but which must be well formed: what
	// follows it is the next request.
	for n := 0; ; {
		line, err := b.br.ReadSlice('\n')
		if err != nil {
			return lineError(err)
		}
		if n += len(line); n > maxTrailer {
			return errTrailerLine
		}
		if len(line) == 2 && line[0] == '\r' {
			b.done = true
			return nil
		}
		if _, _, err := trailerField(line); err != nil {
			return err
		}
	}
}

// lineError is the error of a line that could not be read whole.
func lineError(err error) error {
	if errors.Is(err, bufio.ErrBufferFull) {
		return errChunkLine
	}
	return unexpected(err)
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// fastWriter writes a response on a fast connection: the head when the body starts,
// then the body with its Content-Length or chunked.
type fastWriter struct {
	fc       *fastConn
	r        *http.Request
	h        http.Header
	status   int
	headSent bool
	chunked  bool
	noBody   bool
	length   int64 // declared; -1: none
	written  int64
	close    bool
	err      error
}

func (w *fastWriter) reset(r *http.Request) {
	h := w.h
	if h == nil {
		h = http.Header{}
	}
	clear(h)
	*w = fastWriter{fc: w.fc, r: r, h: h, length: -1}
}

func (w *fastWriter) Header() http.Header { return w.h }

func (w *fastWriter) WriteHeader(code int) {
	if w.status != 0 || code < 200 {
		return // interim responses are not passed on
	}
	w.status = code
}

func (w *fastWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if !w.headSent {
		w.writeHead(false)
	}
	if w.noBody || len(p) == 0 {
		return len(p), nil
	}
	if w.length >= 0 && w.written+int64(len(p)) > w.length {
		return 0, http.ErrContentLength
	}
	bw := w.fc.bw
	if w.chunked {
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), int64(len(p)), 16))
		bw.WriteString("\r\n")
	}
	n, err := bw.Write(p)
	if w.chunked && err == nil {
		_, err = bw.WriteString("\r\n")
	}
	w.written += int64(n)
	if err != nil {
		w.err = err
	}
	return n, err
}

// FlushError sends what was written so far.
func (w *fastWriter) FlushError() error {
	if w.err != nil {
		return w.err
	}
	if !w.headSent {
		w.writeHead(false)
	}
	if err := w.fc.bw.Flush(); err != nil {
		w.err = err
	}
	return w.err
}

func (w *fastWriter) Flush() { _ = w.FlushError() }

// SetReadDeadline takes effect when the body is read: reading the body is all a call
// reads from its client.
func (w *fastWriter) SetReadDeadline(t time.Time) error {
	if !t.IsZero() {
		w.fc.readWanted = t
	}
	return nil
}

// SetWriteDeadline skips clearing: every call sets its own before it writes, and a
// connection going back to net/http is cleared then.
func (w *fastWriter) SetWriteDeadline(t time.Time) error {
	if !t.IsZero() {
		w.fc.setWriteDeadline(t)
	}
	return nil
}

// EnableFullDuplex: the fast path never reads a request body on its own.
func (w *fastWriter) EnableFullDuplex() error { return nil }

func (w *fastWriter) watchClient() { w.fc.watchClient() }

// writeHead writes the status line and header fields; final says the handler is done,
// so that a response with no body written says Content-Length: 0 instead of chunked.
func (w *fastWriter) writeHead(final bool) {
	w.headSent = true
	if w.status == 0 {
		w.status = http.StatusOK
	}
	h := w.h
	w.noBody = w.r.Method == http.MethodHead || w.status == http.StatusNoContent || w.status == http.StatusNotModified
	if v := h["Content-Length"]; len(v) > 0 {
		if n, err := parseLength(v[0]); err == nil {
			w.length = n
		} else {
			delete(h, "Content-Length")
		}
	}
	if c := h["Connection"]; len(c) > 0 {
		w.close = w.close || asciiEqualFold(c[0], "close")
	}
	w.close = w.close || w.r.Close
	bw := w.fc.bw
	bw.WriteString("HTTP/1.1 ")
	bw.Write(strconv.AppendInt(bw.AvailableBuffer(), int64(w.status), 10))
	bw.WriteByte(' ')
	bw.WriteString(http.StatusText(w.status))
	bw.WriteString("\r\n")
	for k, vs := range h {
		switch k {
		case "Connection", "Transfer-Encoding", "Keep-Alive":
			continue
		}
		if strings.HasPrefix(k, http.TrailerPrefix) {
			continue
		}
		for _, v := range vs {
			if strings.ContainsAny(v, "\r\n") {
				v = strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
			}
			writeField(bw, k, v)
		}
	}
	if h["Date"] == nil {
		bw.WriteString("Date: ")
		bw.Write(time.Now().UTC().AppendFormat(bw.AvailableBuffer(), http.TimeFormat))
		bw.WriteString("\r\n")
	}
	switch {
	case w.noBody || w.length >= 0:
	case final:
		w.length = 0
		bw.WriteString("Content-Length: 0\r\n")
	default:
		w.chunked = true
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if w.close {
		bw.WriteString("Connection: close\r\n")
	}
	bw.WriteString("\r\n")
}

// finish ends the response and sends it; false: the connection cannot carry another.
func (w *fastWriter) finish() bool {
	if !w.headSent {
		w.writeHead(true)
	}
	bw := w.fc.bw
	if w.chunked && w.err == nil {
		bw.WriteString("0\r\n")
		for k, vs := range w.h {
			name, ok := strings.CutPrefix(k, http.TrailerPrefix)
			if !ok {
				continue
			}
			for _, v := range vs {
				if !strings.ContainsAny(v, "\r\n") {
					writeField(bw, name, v)
				}
			}
		}
		bw.WriteString("\r\n")
	}
	if err := bw.Flush(); err != nil && w.err == nil {
		w.err = err
	}
	if w.length >= 0 && !w.noBody && w.written != w.length {
		return false // the client would read past or short of the body
	}
	return w.err == nil && !w.close
}
