package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

// This file is the gateway's HTTP/1.1 client: it writes a call's request to a replica
// connection and relays the response to the call's ResponseWriter, in the goroutine that
// serves the call. Small request bodies are read whole first, so that a request can be
// sent again on another connection; larger or chunked ones stream, from a goroutine of
// their own so that a replica may answer while it still reads. Responses stream: what
// arrives is flushed to the client before waiting for more whenever the length is not
// known up front (chunked, read until close, Server-Sent Events).

const (
	// inlineBody: request bodies up to this size are read whole before they are sent.
	inlineBody = 16 << 10
	// maxHeadBytes bounds a response head (status line and header fields).
	maxHeadBytes = 1 << 20
	// quickBody: calls with inline bodies up to this size start unwatched (see watch);
	// they fit in any socket buffer, so writing them cannot run into the short deadline.
	quickBody = 4 << 10
	// watchAfter is how long a call runs before the client is watched (see watch).
	watchAfter = 100 * time.Millisecond
	// drainBody is how much of a request body is read and dropped after the replica
	// stopped reading it (net/http's server reads 256 KiB before it gives up).
	drainBody = 256 << 10
)

var (
	errMalformed       = errors.New("malformed response from the replica")
	errHeadTooLarge    = errors.New("response head from the replica is too large")
	errUnwantedSwitch  = errors.New("the replica switched protocols without being asked to")
	errTransferEncoded = errors.New("the replica used a transfer encoding other than chunked")
)

// upstreamError is a failure of the replica's side of the exchange.
type upstreamError struct{ err error }

func (e *upstreamError) Error() string { return e.err.Error() }
func (e *upstreamError) Unwrap() error { return e.err }

// clientBodyError is a failure to read the request body from the client.
type clientBodyError struct{ err error }

func (e *clientBodyError) Error() string { return "reading the request body: " + e.err.Error() }
func (e *clientBodyError) Unwrap() error { return e.err }

// clientWriteError is a failure to write the response to the client.
type clientWriteError struct{ err error }

func (e *clientWriteError) Error() string { return "writing the response: " + e.err.Error() }
func (e *clientWriteError) Unwrap() error { return e.err }

// head is what the proxy needs to know of a response head.
type head struct {
	status  int
	length  int64 // of the body; -1: not known up front
	chunked bool
	noBody  bool
	close   bool   // the connection cannot carry another request
	upgrade string // the protocol a 101 switches to
	http10  bool
}

// exchange sends the call's request over u and relays the response. It reports whether
// u may carry another request, and retry when the replica closed a reused connection
// without answering and the request can be sent again as it was.
func (cl *call) exchange(u *upstream) (reuse, retry bool, err error) {
	cl.watching, cl.stopWatch = false, nil
	if cl.upgrade || cl.streamBody || len(cl.body) > quickBody || time.Since(cl.start) > watchAfter/2 {
		cl.watch(u)
	} else {
		// Most calls are over before watchAfter: they need no watch on the client.
		u.setDeadline(earliest(cl.start.Add(watchAfter), cl.deadline))
	}
	cl.writeHead(u.bw, u.pool.addr)
	var sent chan error
	switch {
	case cl.body != nil:
		u.bw.Write(cl.body)
		u.send()
	case cl.streamBody:
		// The replica may answer while the body is still coming: the server must not
		// consume the rest of the body when the answer starts.
		_ = http.NewResponseController(cl.w).EnableFullDuplex()
		sent = make(chan error, 1)
		// The body and its limit, not the call: a goroutine holding the call would
		// move it to the heap for every call, streamed or not.
		go sendBody(cl.r, cl.p.maxBody, u, sent)
	default:
		u.send()
	}

	h := cl.w.Header()
	hd, n, err := cl.readHead(u, h)
	if err != nil {
		if berr := cl.bodySent(u, sent); berr != nil {
			err = berr
		}
		return false, n == 0 && u.reused && cl.replayable() && sent == nil, err
	}
	cl.status = hd.status
	cl.setResponseHeaders(h, hd.status)
	if hd.status == http.StatusSwitchingProtocols {
		return false, false, cl.tunnel(u, h, hd)
	}
	cl.w.WriteHeader(hd.status)
	cl.wroteHeader = true
	err = cl.relayBody(u, hd, h)
	if berr := cl.bodySent(u, sent); err == nil {
		err = berr
	}
	// Bytes past the end of the response are no answer to anything the gateway asked:
	// read as the next response, they would reach another caller.
	return err == nil && !hd.close && !u.broken && u.br.Buffered() == 0, false, err
}

// watch bounds the rest of the exchange by the function's deadline alone, and ends it as
// soon as the client leaves. A call gets there when it has taken watchAfter, or from the
// start when it will take long anyway (bodies streamed, protocol switches): watching a
// client costs a registration on its context, and on a connection the gateway serves
// itself, a goroutine.
func (cl *call) watch(u *upstream) {
	cl.watching = true
	u.setDeadline(cl.deadline)
	if cl.watcher != nil {
		cl.watcher.watchClient()
	}
	cl.stopWatch = context.AfterFunc(cl.r.Context(), u.abortFn)
}

// more reads at least one byte more into u's buffer, consuming nothing; the first
// timeout short of the function's deadline turns the watch on and reads on.
func (cl *call) more(u *upstream) error {
	for {
		_, err := u.br.Peek(u.br.Buffered() + 1)
		if err == nil {
			return nil
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			return errHeadTooLarge
		}
		if cl.watching || u.sendErr != nil || !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
		cl.watch(u)
	}
}

func earliest(a, b time.Time) time.Time {
	if !b.IsZero() && b.Before(a) {
		return b
	}
	return a
}

// replayable reports whether the request may be sent again after a reused connection
// failed: as net/http's client does, for idempotent methods without a body in flight.
func (cl *call) replayable() bool {
	if cl.streamBody {
		return false
	}
	switch cl.r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	return cl.r.Header["Idempotency-Key"] != nil
}

// writeHead writes the request line and header fields: the client's fields without the
// hop-by-hop ones and those that only the gateway may write, the forwarding fields
// (forwarded.go), the call's id and start time, and the framing of the body.
func (cl *call) writeHead(bw *bufio.Writer, addr string) {
	r := cl.r
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	if cl.path == "" {
		bw.WriteByte('/')
	} else {
		bw.WriteString(cl.path)
	}
	if r.URL.RawQuery != "" || r.URL.ForceQuery {
		bw.WriteByte('?')
		bw.WriteString(r.URL.RawQuery)
	}
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(addr)
	bw.WriteString("\r\n")

	conn := r.Header["Connection"]
	for k, vs := range r.Header {
		if dropRequestField(k) || (len(conn) > 0 && namedIn(conn, k)) || underscoreSpelling(k, dropRequestField) {
			continue
		}
		for _, v := range vs {
			writeField(bw, k, v)
		}
	}
	cl.writeForwarding(bw)
	writeField(bw, "X-Call-Id", cl.id)
	writeField(bw, "X-Start-Time", cl.startStr)
	if cl.upgrade {
		writeField(bw, "Connection", "Upgrade")
		writeField(bw, "Upgrade", r.Header.Get("Upgrade"))
	}
	switch {
	case cl.body != nil || (cl.streamBody && r.ContentLength > 0):
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), r.ContentLength, 10))
		bw.WriteString("\r\n")
	case cl.streamBody:
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	case r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch:
		bw.WriteString("Content-Length: 0\r\n")
	}
	bw.WriteString("\r\n")
}

func writeField(bw *bufio.Writer, k, v string) {
	bw.WriteString(k)
	bw.WriteString(": ")
	bw.WriteString(v)
	bw.WriteString("\r\n")
}

// dropRequestField reports the client's fields that are not passed on as they are: the
// hop-by-hop ones, the framing (written anew), and those the gateway writes itself.
func dropRequestField(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
		"Content-Length", "Expect", "X-Call-Id", "X-Start-Time":
		return true
	}
	return forwardingField(k)
}

// namedIn reports whether a Connection field names the header field k (hop-by-hop).
func namedIn(conn []string, k string) bool {
	for _, v := range conn {
		for len(v) > 0 {
			var tok string
			tok, v = cutToken(v)
			if asciiEqualFold(tok, k) {
				return true
			}
		}
	}
	return false
}

// cutToken returns the first comma-separated token of v, trimmed, and the rest.
func cutToken(v string) (tok, rest string) {
	i := 0
	for i < len(v) && v[i] != ',' {
		i++
	}
	tok, rest = v[:i], v[min(i+1, len(v)):]
	for len(tok) > 0 && (tok[0] == ' ' || tok[0] == '\t') {
		tok = tok[1:]
	}
	for len(tok) > 0 && (tok[len(tok)-1] == ' ' || tok[len(tok)-1] == '\t') {
		tok = tok[:len(tok)-1]
	}
	return tok, rest
}

func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// sendBody streams the request body to the replica, chunked when the client did not say
// its length, and reports how that ended. A client-side failure aborts the exchange; a
// replica-side one only stops sending, since the replica may have answered already.
func sendBody(r *http.Request, maxBody int64, u *upstream, sent chan<- error) {
	bp := largeBufs.Get().(*[]byte)
	defer largeBufs.Put(bp)
	buf := *bp
	chunked := r.ContentLength < 0
	left := maxBody // the size limit, known only while streaming a chunked body
	var err error
	for {
		rd := buf
		if chunked && left+1 < int64(len(rd)) {
			rd = rd[:left+1]
		}
		n, rerr := r.Body.Read(rd)
		if chunked {
			if left -= int64(n); left < 0 {
				rerr, n = &http.MaxBytesError{Limit: maxBody}, 0
			}
		}
		if n > 0 {
			if chunked {
				u.bw.Write(strconv.AppendUint(u.bw.AvailableBuffer(), uint64(n), 16))
				u.bw.WriteString("\r\n")
			}
			u.bw.Write(rd[:n])
			if chunked {
				u.bw.WriteString("\r\n")
			}
			if werr := u.bw.Flush(); werr != nil {
				// The replica stopped reading, and may have answered. Read on a
				// little, as net/http's server does, so that the client is not
				// reset while it still sends and can read the answer.
				err = &upstreamError{werr}
				io.CopyN(io.Discard, r.Body, drainBody)
				break
			}
		}
		if rerr == io.EOF {
			if chunked {
				u.bw.WriteString("0\r\n\r\n")
			}
			if werr := u.bw.Flush(); werr != nil {
				err = &upstreamError{werr}
			}
			break
		}
		if rerr != nil {
			err = &clientBodyError{rerr}
			u.abort()
			break
		}
	}
	sent <- err
}

// bodySent waits for a streamed request body to be sent, and returns how that failed on
// the client's side, if it did. A response that ended first ends the sending.
func (cl *call) bodySent(u *upstream, sent chan error) error {
	if sent == nil {
		return nil
	}
	var err error
	select {
	case err = <-sent:
	default:
		// The replica answered without reading the whole body: stop sending it.
		u.abort()
		u.broken = true
		err = <-sent
	}
	if err != nil {
		u.broken = true
	}
	var ce *clientBodyError
	if errors.As(err, &ce) {
		return err
	}
	return nil
}

// readHead reads the response head into h, skipping interim (1xx) responses other than
// 101, and returns how many bytes it read.
func (cl *call) readHead(u *upstream, h http.Header) (hd head, n int, err error) {
	for {
		line, err := cl.readLine(u, &n)
		if err != nil {
			return hd, n, err
		}
		hd, err = parseStatusLine(line)
		if err != nil {
			return hd, n, err
		}
		if hd.status >= 200 || hd.status == http.StatusSwitchingProtocols {
			break
		}
		// An interim response is not passed on, but it is read as strictly: its end is
		// where the real one starts.
		if err := cl.readFields(u, http.Header{}, &head{}, &n); err != nil {
			return hd, n, err
		}
	}
	if err := cl.readFields(u, h, &hd, &n); err != nil {
		return hd, n, err
	}
	if hd.chunked && hd.http10 {
		// HTTP/1.0 has no chunked framing: net/http reads such a body up to the close,
		// others by its chunks.
		return hd, n, fmt.Errorf("%w: chunked in an HTTP/1.0 response", errMalformed)
	}
	switch {
	case hd.status == http.StatusSwitchingProtocols:
		if !cl.upgrade {
			return hd, n, errUnwantedSwitch
		}
		hd.noBody = true
	case cl.r.Method == http.MethodHead || hd.status == http.StatusNoContent || hd.status == http.StatusNotModified:
		hd.noBody = true
	case hd.chunked:
		if hd.length >= 0 {
			// Both framings: chunked wins, and the connection, whose framing another
			// reader might take otherwise, is not used again.
			hd.close = true
		}
		hd.length = -1
		delete(h, "Content-Length")
	case hd.length < 0:
		hd.close = true // the body ends when the replica closes the connection
	}
	return hd, n, nil
}

// parseStatusLine reads "HTTP/1.x NNN reason".
func parseStatusLine(line []byte) (head, error) {
	hd := head{length: -1}
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || line[8] != ' ' || (len(line) > 12 && line[12] != ' ') {
		return hd, fmt.Errorf("%w: status line %q", errMalformed, line)
	}
	switch line[7] {
	case '1':
	case '0':
		hd.http10, hd.close = true, true // unless the replica says keep-alive
	default:
		return hd, fmt.Errorf("%w: status line %q", errMalformed, line)
	}
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return hd, fmt.Errorf("%w: status line %q", errMalformed, line)
		}
		hd.status = hd.status*10 + int(c-'0')
	}
	if hd.status < 100 {
		return hd, fmt.Errorf("%w: status line %q", errMalformed, line)
	}
	return hd, nil
}

// field is a header field read but not yet stored: its value is in the connection's
// scratch buffer.
type field struct {
	key      string
	from, to int
}

// readFields reads the header fields into h, less the hop-by-hop ones. The values share
// one string and one slice: a response costs two allocations however many fields it
// has, and field names that responses usually carry cost none.
func (cl *call) readFields(u *upstream, h http.Header, hd *head, n *int) error {
	var stack [24]field
	fields := stack[:0]
	scratch := u.scratch[:0]
	var conn string
	for {
		line, err := cl.readLine(u, n)
		if err != nil {
			return err
		}
		if len(line) == 0 {
			break
		}
		colon := 0
		for colon < len(line) && line[colon] != ':' {
			colon++
		}
		if colon == 0 || colon == len(line) || !canonicalKey(line[:colon]) {
			return fmt.Errorf("%w: header line %q", errMalformed, line)
		}
		kb, vb := line[:colon], trimOWS(line[colon+1:])
		if !validValue(vb) {
			// A CR or NUL in a value is how a response is split on its way on.
			return fmt.Errorf("%w: header line %q", errMalformed, line)
		}
		switch string(kb) {
		case "Connection":
			conn = string(vb)
			continue
		case "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization", "Te":
			continue
		case "Transfer-Encoding":
			if !asciiEqualFold(string(vb), "chunked") || hd.chunked {
				return errTransferEncoded
			}
			hd.chunked = true
			continue
		case "Upgrade":
			hd.upgrade = string(vb)
			continue
		case "Content-Length":
			l, err := parseLength(string(vb))
			if err != nil || (hd.length >= 0 && l != hd.length) {
				return fmt.Errorf("%w: Content-Length %q", errMalformed, vb)
			}
			if hd.length >= 0 {
				continue // repeated, same value
			}
			hd.length = l
		case "Trailer":
			vb = allowedTrailers(vb)
		}
		key, ok := commonFields[string(kb)]
		if !ok {
			key = string(kb)
		}
		fields = append(fields, field{key: key, from: len(scratch), to: len(scratch) + len(vb)})
		scratch = append(scratch, vb...)
	}
	u.scratch = scratch[:0]
	for len(conn) > 0 {
		var tok string
		tok, conn = cutToken(conn)
		switch {
		case asciiEqualFold(tok, "close"):
			hd.close = true
		case asciiEqualFold(tok, "keep-alive"):
			hd.close = false
		case !asciiEqualFold(tok, "upgrade"):
			for i := range fields {
				if asciiEqualFold(fields[i].key, tok) {
					fields[i].key = ""
				}
			}
		}
	}
	if len(fields) == 0 {
		return nil
	}
	all := string(scratch)
	vals := make([]string, len(fields))
	for i, f := range fields {
		if f.key == "" {
			continue
		}
		vals[i] = all[f.from:f.to]
		if prior, ok := h[f.key]; ok {
			h[f.key] = append(prior, vals[i])
		} else {
			h[f.key] = vals[i : i+1 : i+1]
		}
	}
	return nil
}

// commonFields interns the names of the header fields responses usually carry, so that
// reading them allocates nothing. Read-only after start-up.
var commonFields = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{
		"Accept-Ranges", "Access-Control-Allow-Credentials", "Access-Control-Allow-Headers",
		"Access-Control-Allow-Methods", "Access-Control-Allow-Origin", "Access-Control-Expose-Headers",
		"Access-Control-Max-Age", "Age", "Cache-Control", "Content-Disposition", "Content-Encoding",
		"Content-Language", "Content-Length", "Content-Security-Policy", "Content-Type", "Date",
		"Etag", "Expires", "Last-Modified", "Link", "Location", "Pragma", "Retry-After",
		"Sec-Websocket-Accept", "Sec-Websocket-Extensions", "Sec-Websocket-Protocol", "Server",
		"Set-Cookie", "Strict-Transport-Security", "Trailer", "Vary", "Via", "Www-Authenticate",
		"X-Call-Id", "X-Content-Type-Options", "X-Duration-Seconds", "X-Frame-Options",
		"X-Powered-By", "X-Request-Id", "X-Start-Time",
	} {
		m[k] = k
	}
	return m
}()

// canonicalKey puts a field name in canonical form in place (Content-Type), as net/http
// does, and reports whether it is a valid token.
func canonicalKey(k []byte) bool {
	upper := true
	for i, c := range k {
		if !isTokenChar(c) {
			return false
		}
		if upper && 'a' <= c && c <= 'z' {
			k[i] = c - ('a' - 'A')
		} else if !upper && 'A' <= c && c <= 'Z' {
			k[i] = c + ('a' - 'A')
		}
		upper = c == '-'
	}
	return true
}

func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// readLine returns the next line without its end (LF, or CRLF), valid until the next
// read, counting the bytes read into n.
func (cl *call) readLine(u *upstream, n *int) ([]byte, error) {
	line, err := cl.rawLine(u, n)
	if err != nil {
		return nil, err
	}
	line = line[:len(line)-1]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, nil
}

// rawLine returns the next line with its LF, valid until the next read, counting the
// bytes read into n, which must stay within maxHeadBytes.
func (cl *call) rawLine(u *upstream, n *int) ([]byte, error) {
	for {
		buf, _ := u.br.Peek(u.br.Buffered())
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			line := buf[:i+1]
			u.br.Discard(i + 1)
			if *n += i + 1; *n > maxHeadBytes {
				return nil, errHeadTooLarge
			}
			return line, nil
		}
		if err := cl.more(u); err != nil {
			if err == io.EOF && (*n > 0 || len(buf) > 0) {
				err = io.ErrUnexpectedEOF
			}
			if err == errHeadTooLarge {
				return nil, err
			}
			return nil, &upstreamError{err}
		}
	}
}

// relayBody copies the response body to the client. Bodies of unknown length (chunked,
// or until the replica closes) and event streams are flushed whenever the replica has
// sent nothing more yet.
func (cl *call) relayBody(u *upstream, hd head, h http.Header) error {
	if hd.noBody {
		return nil
	}
	flush := hd.length < 0 || isEventStream(h)
	if !hd.chunked {
		return cl.copyBody(u, hd.length, flush)
	}
	var excess int64
	for {
		cl.flushIfIdle(u.br, flush)
		n := maxHeadBytes - maxChunkLine // the line's own bound is chunkSize's
		line, err := cl.rawLine(u, &n)
		if errors.Is(err, errHeadTooLarge) {
			return fmt.Errorf("%w: %w", errMalformed, errChunkLine)
		}
		if err != nil {
			return err
		}
		size, err := chunkSize(line)
		if err == nil {
			err = chunkOverhead(&excess, len(line), size)
		}
		if err != nil {
			return fmt.Errorf("%w: %w", errMalformed, err)
		}
		if size == 0 {
			return cl.readTrailers(u, h)
		}
		if err := cl.copyBody(u, size, flush); err != nil {
			return err
		}
		n = maxHeadBytes - 2
		if line, err = cl.rawLine(u, &n); err != nil {
			return err
		} else if string(line) != "\r\n" {
			return fmt.Errorf("%w: %w", errMalformed, errChunkEnd)
		}
	}
}

func isEventStream(h http.Header) bool {
	ct := h["Content-Type"]
	return len(ct) > 0 && len(ct[0]) >= 17 && asciiEqualFold(ct[0][:17], "text/event-stream")
}

// parseLength reads a Content-Length: digits only, as net/http reads it (no sign, which
// strconv would take).
func parseLength(v string) (int64, error) {
	n, err := strconv.ParseUint(v, 10, 63)
	return int64(n), err
}

// readTrailers passes the trailer fields of a chunked response on as trailers, less
// those that must not come as trailers.
func (cl *call) readTrailers(u *upstream, h http.Header) error {
	n := maxHeadBytes - maxTrailer
	for {
		line, err := cl.rawLine(u, &n)
		if err != nil {
			return err
		}
		if string(line) == "\r\n" {
			return nil
		}
		k, v, err := trailerField(line)
		if err != nil {
			return fmt.Errorf("%w: %w", errMalformed, err)
		}
		canonicalKey(k)
		if !forbiddenTrailer(string(k)) {
			h.Add(http.TrailerPrefix+string(k), string(v))
		}
	}
}

// allowedTrailers is a Trailer field's list without the fields that must not come as
// trailers (clients refuse a response that announces them).
func allowedTrailers(v []byte) []byte {
	var kept []byte
	for rest := string(v); len(rest) > 0; {
		var tok string
		tok, rest = cutToken(rest)
		if tok == "" || forbiddenTrailer(http.CanonicalHeaderKey(tok)) {
			continue
		}
		if len(kept) > 0 {
			kept = append(kept, ", "...)
		}
		kept = append(kept, tok...)
	}
	return kept
}

// copyBody copies n bytes of body (n < 0: up to the end of the connection) from the
// replica's read buffer straight to the client.
func (cl *call) copyBody(u *upstream, n int64, flush bool) error {
	br := u.br
	for n != 0 {
		if br.Buffered() == 0 && (n < 0 || n >= bigRead) && !flush && cl.watching {
			// A large body: read past the buffer, in larger pieces, with one copy less.
			if err := cl.copyLarge(u, &n); err != nil || n == 0 {
				return err
			}
			continue
		}
		if br.Buffered() == 0 {
			cl.flushIfIdle(br, flush)
			if err := cl.more(u); err != nil {
				if n < 0 && err == io.EOF {
					return nil
				}
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return &upstreamError{err}
			}
		}
		b, _ := br.Peek(br.Buffered())
		if n >= 0 && int64(len(b)) > n {
			b = b[:n]
		}
		if _, err := cl.w.Write(b); err != nil {
			return &clientWriteError{err}
		}
		br.Discard(len(b))
		if n > 0 {
			n -= int64(len(b))
		}
	}
	return nil
}

// bigRead: response bodies with at least this much left are read in such pieces.
const bigRead = 64 << 10

// copyLarge relays one read of at most bigRead bytes of body, read straight from the
// connection, and counts it off n.
func (cl *call) copyLarge(u *upstream, n *int64) error {
	bp := bigBufs.Get().(*[]byte)
	defer bigBufs.Put(bp)
	buf := *bp
	if *n >= 0 && int64(len(buf)) > *n {
		buf = buf[:*n]
	}
	m, err := u.br.Read(buf)
	if m > 0 {
		if _, werr := cl.w.Write(buf[:m]); werr != nil {
			return &clientWriteError{werr}
		}
		if *n > 0 {
			*n -= int64(m)
		}
	}
	switch {
	case err == io.EOF && *n < 0:
		*n = 0
		return nil
	case err == io.EOF:
		return &upstreamError{io.ErrUnexpectedEOF}
	case err != nil:
		return &upstreamError{err}
	}
	return nil
}

var bigBufs = sync.Pool{New: func() any { b := make([]byte, bigRead); return &b }}

// flushIfIdle flushes what the client was written when the replica has nothing more
// buffered, so that nothing waits in the gateway while it waits for the replica.
func (cl *call) flushIfIdle(br *bufio.Reader, flush bool) {
	if flush && br.Buffered() == 0 {
		_ = http.NewResponseController(cl.w).Flush()
	}
}

// tunnel takes over both connections after a 101 and copies bytes both ways until
// either side closes.
func (cl *call) tunnel(u *upstream, h http.Header, hd head) error {
	conn, brw, err := http.NewResponseController(cl.w).Hijack()
	if err != nil {
		return fmt.Errorf("switching protocols: %w", err)
	}
	cl.wroteHeader = true
	defer conn.Close()
	defer u.conn.Close()
	// The replica agreed: from now on the stream is the function's, as long as both
	// ends keep it open, and no deadline of the call's applies.
	if cl.stopWatch != nil {
		cl.stopWatch()
		cl.stopWatch = nil
	}
	_ = conn.SetDeadline(time.Time{})
	_ = u.conn.SetDeadline(time.Time{})
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\n")
	h.Write(brw)
	brw.WriteString("Connection: Upgrade\r\nUpgrade: ")
	brw.WriteString(hd.upgrade)
	brw.WriteString("\r\n\r\n")
	if err := brw.Flush(); err != nil {
		return nil // the client left; nobody reads an answer
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(u.conn, brw.Reader)
		u.conn.Close()
		conn.Close()
	}()
	// What the replica sent behind its 101 first, then its socket itself: a copy
	// between two sockets splices, which a copy through the reader would not.
	if n := u.br.Buffered(); n > 0 {
		ahead, _ := u.br.Peek(n)
		_, _ = conn.Write(ahead)
	}
	io.Copy(conn, u.conn)
	conn.Close()
	u.conn.Close()
	<-done
	return nil
}

// largeBufs are the buffers streamed request bodies are read into.
var largeBufs = sync.Pool{New: func() any { b := make([]byte, bigRead); return &b }}

// smallBufs hold request bodies read whole.
var smallBufs = sync.Pool{New: func() any { b := make([]byte, inlineBody); return &b }}
