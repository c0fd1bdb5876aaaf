package watchdog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// allowedMethods are the methods the classic watchdog forks for; anything else is 405.
const allowedMethods = "GET, POST, PUT, PATCH, DELETE"

// ioGrace bounds how long a finished child's output pipe may be held open by a process that
// escaped its process group (a daemon that called setsid) before the watchdog stops reading.
const ioGrace = time.Second

// Why a child was killed; the response depends on it.
var (
	errExecTimeout  = errors.New("exec_timeout exceeded")
	errWriteTimeout = errors.New("write_timeout exceeded")
	errBodyRead     = errors.New("reading the request body failed")
)

// invoke forks the function once for this request: the body streams to its stdin, its output
// is collected, and the answer is written when it exits. The output has to be buffered: the
// status (200 or 500) and X-Duration-Seconds depend on how the child ends.
func (s *server) invoke(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	switch r.Method {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		w.Header().Set("Allow", allowedMethods)
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	n, ok := s.begin()
	if !ok {
		http.Error(w, "Watchdog is shutting down.", http.StatusServiceUnavailable)
		return
	}
	defer s.end()
	if limit := s.cfg.MaxInflight; limit > 0 && n > int64(limit) {
		w.WriteHeader(http.StatusTooManyRequests)
		fmt.Fprintf(w, "Concurrent request limit exceeded. Max concurrent requests: %d\n", limit)
		return
	}
	body, hasBody, ok := s.limitBody(w, r)
	if !ok {
		return
	}
	if s.cfg.DebugHeaders {
		s.logHeaders(r.Header, "in")
	}

	p := &proc{s: s}
	stdin, err := s.stdin(r, body, hasBody, p)
	if err != nil {
		s.bodyFailed(w, err)
		return
	}
	out := getBuffer()
	defer putBuffer(out)
	var stderr *bytes.Buffer
	if !s.cfg.CombineOutput {
		stderr = getBuffer()
		defer putBuffer(stderr)
	}
	cmd := s.command(r, stdin, out, stderr)
	if err := cmd.Start(); err != nil {
		s.failed(w, err, nil, nil)
		return
	}
	err = s.wait(w, r, cmd, p, start)
	if stderr != nil && stderr.Len() > 0 {
		s.log.Printf("stderr: %s", stderr.Bytes())
	}
	bodyErr, cause := p.outcome()
	switch {
	case bodyErr != nil:
		s.bodyFailed(w, bodyErr)
	case cause != nil && killedBySignal(cmd.ProcessState):
		s.killed(w, cause)
	case err != nil:
		s.failed(w, err, out.Bytes(), cmd.ProcessState)
	default:
		s.succeeded(w, r, out.Bytes(), start)
	}
}

// limitBody bounds the request body by max_body_bytes. A body known to be too large is
// answered here, without forking a child only to kill it (ok false).
func (s *server) limitBody(w http.ResponseWriter, r *http.Request) (body io.Reader, hasBody, ok bool) {
	hasBody = r.Body != nil && r.Body != http.NoBody
	limit := s.cfg.MaxBodyBytes
	if limit <= 0 || !hasBody {
		return r.Body, hasBody, true
	}
	if r.ContentLength > limit {
		s.tooLarge(w)
		return nil, hasBody, false
	}
	// A chunked body is only found to be too long while streaming; MaxBytesReader also
	// makes the server close the connection instead of reading the rest.
	return http.MaxBytesReader(w, r.Body, limit), hasBody, true
}

// command is the child for one request, writing its output to out, and its errors to
// stderr, or to out as well when stderr is nil (combine_output).
func (s *server) command(r *http.Request, stdin io.Reader, out, stderr *bytes.Buffer) *exec.Cmd {
	cmd := &exec.Cmd{
		Path:        s.path,
		Args:        s.cfg.Argv,
		Env:         s.childEnv(r),
		Stdin:       stdin,
		Stdout:      out,
		Stderr:      out,
		SysProcAttr: s.sysAttr,
		WaitDelay:   ioGrace,
	}
	// The same writer for both makes exec.Cmd hand the child one pipe as fd 1 and 2, so
	// the interleaving is the child's own.
	if stderr != nil {
		cmd.Stderr = stderr
	}
	s.log.Print("Forking fprocess.")
	return cmd
}

// wait waits for the started child to exit, killing its process group on a timeout, a
// client that went away or a forced shutdown, and returns how it ended.
func (s *server) wait(w http.ResponseWriter, r *http.Request, cmd *exec.Cmd, p *proc, start time.Time) error {
	pid := cmd.Process.Pid
	p.started(pid)
	// r.Context() ends when the client goes away or a forced shutdown cancels every request;
	// either way, and on a timeout, nobody can use the output, so the group is killed.
	ctx, cancel := s.deadline(r.Context(), start)
	defer cancel()
	stopKill := context.AfterFunc(ctx, func() { p.kill(context.Cause(ctx)) })
	werr := waitExited(pid)
	stopKill()
	if werr != nil {
		s.log.Printf("Error waiting for process %d: %s", pid, werr)
	}
	p.reap(werr == nil)
	src, _ := cmd.Stdin.(*stdinSource)
	abandoned := src != nil && !src.done.Load()
	if abandoned {
		// The child is gone and nothing will read the rest of the body, but the copier may
		// be blocked reading it from a client that is slow or stalled, and cmd.Wait waits
		// for the copier. A read deadline in the past wakes it.
		http.NewResponseController(w).SetReadDeadline(time.Now())
	}
	err := cmd.Wait()
	if abandoned || src != nil && !src.sawEOF.Load() {
		// Part of the body was never read. Left alone, net/http would read up to 256 KiB
		// of it before answering, so a stalled client would hold the answer until
		// read_timeout. And after the deadline above the connection must not be reused
		// at all: if the body did end meanwhile, net/http is already reading the next
		// request in the background, and the deadline failing that read cancels the
		// context of every later request on the connection.
		w.Header().Set("Connection", "close")
	}
	return err
}

// stdin returns what the child reads: nothing (exec.Cmd then opens /dev/null, so the child
// sees EOF at once and no pipe or goroutine is spent), the streamed body, or the JSON
// envelope of marshal_request.
func (s *server) stdin(r *http.Request, body io.Reader, hasBody bool, p *proc) (io.Reader, error) {
	if s.cfg.MarshalRequest {
		raw, err := io.ReadAll(body)
		if err != nil {
			return nil, err
		}
		var m marshalledRequest
		m.Header, m.Body.Raw = r.Header, raw
		data, err := json.Marshal(&m)
		if err != nil {
			return nil, fmt.Errorf("marshal request: %w", err)
		}
		return bytes.NewReader(data), nil
	}
	if !hasBody {
		return nil, nil
	}
	return &stdinSource{body: body, p: p}, nil
}

// marshalledRequest is the classic watchdog's marshal_request envelope; Raw is base64 in JSON.
type marshalledRequest struct {
	Header http.Header `json:"header"`
	Body   struct {
		Raw []byte `json:"raw"`
	} `json:"body"`
}

// deadline bounds the child: exec_timeout counts from the fork, and write_timeout from the
// request, because once the server's write deadline has passed no answer can be sent.
func (s *server) deadline(ctx context.Context, start time.Time) (context.Context, context.CancelFunc) {
	var at time.Time
	var cause error
	if d := s.cfg.WriteTimeout; d > 0 {
		at, cause = start.Add(d), errWriteTimeout
	}
	if d := s.cfg.ExecTimeout; d > 0 {
		// On a tie the exec timeout wins: it has a defined answer (408).
		if t := time.Now().Add(d); cause == nil || !t.After(at) {
			at, cause = t, errExecTimeout
		}
	}
	if cause == nil {
		return ctx, func() {}
	}
	return context.WithDeadlineCause(ctx, at, cause)
}

// childEnv is the watchdog's environment plus, with cgi_headers, the Http_* variables. They
// are appended after the inherited ones because exec.Cmd keeps the last of duplicate keys:
// a request cannot be shadowed by a same-named variable in the function's own environment.
func (s *server) childEnv(r *http.Request) []string {
	if !s.cfg.CGIHeaders {
		return s.env // exec.Cmd only reads it
	}
	env := make([]string, len(s.env), len(s.env)+len(r.Header)+8)
	copy(env, s.env)
	for name, values := range r.Header {
		if len(values) > 0 {
			env = append(env, headerVar(name, values[0]))
		}
	}
	env = append(env, "Http_Method="+r.Method)
	cl := strconv.FormatInt(r.ContentLength, 10) // -1 when unknown (chunked)
	env = append(env, "Http_ContentLength="+cl, "Http_Content_Length="+cl)
	if len(r.TransferEncoding) > 0 {
		env = append(env, "Http_Transfer_Encoding="+r.TransferEncoding[0])
	}
	if r.URL.RawQuery != "" {
		env = append(env, "Http_Query="+r.URL.RawQuery)
	}
	if r.URL.Path != "" {
		// The path is decoded, so %00 becomes a NUL, which no environment variable can
		// hold (exec fails with EINVAL): it stays encoded.
		env = append(env, "Http_Path="+strings.ReplaceAll(r.URL.Path, "\x00", "%00"))
	}
	if r.Host != "" {
		env = append(env, "Http_Host="+r.Host)
	}
	return env
}

// headerVar builds Http_<Canonical_Name>=<value> in one allocation.
func headerVar(name, value string) string {
	var b strings.Builder
	b.Grow(len("Http_") + len(name) + 1 + len(value))
	b.WriteString("Http_")
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c == '-' {
			c = '_'
		}
		b.WriteByte(c)
	}
	b.WriteByte('=')
	b.WriteString(value)
	return b.String()
}

func (s *server) succeeded(w http.ResponseWriter, r *http.Request, out []byte, start time.Time) {
	h := w.Header()
	if ct := s.cfg.ContentType; ct != "" {
		h.Set("Content-Type", ct)
	} else if ct := r.Header.Get("Content-Type"); ct != "" {
		h.Set("Content-Type", ct)
	} // otherwise net/http sniffs it from the output, as upstream
	secs := time.Since(start).Seconds()
	h.Set("X-Duration-Seconds", strconv.FormatFloat(secs, 'f', 6, 64))
	// The whole body is known, so say how long it is rather than fall back to chunking.
	h.Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(http.StatusOK)
	w.Write(out)

	if s.cfg.DebugHeaders {
		s.logHeaders(h, "out")
	}
	if s.cfg.WriteDebug {
		s.log.Printf("%s", out)
		s.log.Printf("Duration: %fs", secs)
		return
	}
	s.log.Printf("Wrote %d Bytes - Duration: %fs", len(out), secs)
}

// failed answers a child that could not start or exited non-zero: 500, the error text, a
// newline, then whatever the child wrote. No "Wrote" line is logged, as upstream.
func (s *server) failed(w http.ResponseWriter, err error, out []byte, state *os.ProcessState) {
	msg := err.Error()
	if s.cfg.WriteDebug {
		s.log.Printf("Success=%t, Error=%s", state != nil && state.Success(), msg)
		s.log.Printf("Out=%s", out)
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(msg)+1+len(out)))
	w.WriteHeader(http.StatusInternalServerError)
	io.WriteString(w, msg)
	io.WriteString(w, "\n")
	w.Write(out)
}

// killed answers a child the watchdog killed. Only the exec timeout has an upstream answer;
// in the other cases the client is gone or about to be, but say something coherent anyway.
func (s *server) killed(w http.ResponseWriter, cause error) {
	switch cause {
	case errExecTimeout:
		w.WriteHeader(http.StatusRequestTimeout)
		io.WriteString(w, "Killed process.\n")
	case errWriteTimeout:
		http.Error(w, "Killed process: write_timeout exceeded.", http.StatusGatewayTimeout)
	case errShutdown:
		http.Error(w, "Killed process: watchdog shutting down.", http.StatusServiceUnavailable)
	default:
		http.Error(w, "Killed process: client disconnected.", http.StatusInternalServerError)
	}
}

func (s *server) bodyFailed(w http.ResponseWriter, err error) {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		s.tooLarge(w)
		return
	}
	http.Error(w, "Error reading request body: "+err.Error(), http.StatusBadRequest)
}

func (s *server) tooLarge(w http.ResponseWriter) {
	http.Error(w, fmt.Sprintf("Request body too large: the limit is %d bytes (max_body_bytes).",
		s.cfg.MaxBodyBytes), http.StatusRequestEntityTooLarge)
}

func (s *server) logHeaders(h http.Header, direction string) {
	for name, values := range h {
		s.log.Printf("[%s] %s=%s", direction, name, values)
	}
}

// proc is one child as seen by the goroutines that may kill it: the timeout or disconnect
// callback, the stdin copier, and the handler that reaps it.
type proc struct {
	s       *server
	mu      sync.Mutex
	pid     int   // 0 until started
	reaping bool  // exited and about to be reaped: its pid may be reused, never signal it
	cause   error // why the watchdog killed it; nil if it did not
	bodyErr error
}

// started records the pid; a body error noticed while Start was returning kills it now.
func (p *proc) started(pid int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pid = pid
	if p.cause != nil {
		killGroup(pid)
	}
}

// kill kills the child's whole process group unless it already exited; the first cause wins.
func (p *proc) kill(cause error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reaping || p.cause != nil {
		return
	}
	p.cause = cause
	p.s.logKill(cause)
	if p.pid != 0 {
		killGroup(p.pid)
	}
}

// failBody is called by the stdin copier: a body cut short must never reach the child as a
// clean EOF (sha512sum of half an upload is a wrong answer, not an error), so the child dies
// before its stdin is closed. It reports whether the error is news: once the child has
// exited or been killed for another reason, a body error is a consequence (the copier was
// woken on purpose).
func (p *proc) failBody(err error) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reaping || p.cause != nil {
		return false
	}
	p.bodyErr, p.cause = err, errBodyRead
	p.s.log.Printf("Error reading request body: %s", err)
	if p.pid != 0 {
		killGroup(p.pid)
	}
	return true
}

// reap marks the child as exited. Its process group may still hold background jobs the
// function left behind; they would outlive the request (and hold its output pipe open), so
// they are killed while the unreaped leader still pins the group id.
func (p *proc) reap(killStragglers bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reaping = true
	if killStragglers {
		killGroup(p.pid)
	}
}

func (p *proc) outcome() (bodyErr, cause error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.bodyErr, p.cause
}

func (s *server) logKill(cause error) {
	switch cause {
	case errExecTimeout:
		s.log.Printf("Killing process: %s", s.cfg.Process)
	case errWriteTimeout:
		s.log.Printf("Write timeout (%s) exceeded, killing process: %s", s.cfg.WriteTimeout, s.cfg.Process)
	case errShutdown:
		s.log.Printf("Shutting down, killing process: %s", s.cfg.Process)
	default:
		s.log.Printf("Client disconnected, killing process: %s", s.cfg.Process)
	}
}

func killedBySignal(state *os.ProcessState) bool {
	if state == nil {
		return false
	}
	ws, ok := state.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled()
}

// stdinSource streams the request body into the child's stdin pipe. exec.Cmd copies it with
// io.Copy, which prefers WriteTo: that lets the copy use a pooled buffer (os.File.ReadFrom
// would allocate 32 KiB per request) and see body errors before the pipe is closed.
type stdinSource struct {
	body   io.Reader
	p      *proc
	done   atomic.Bool // the copy has ended, however
	sawEOF atomic.Bool // the whole body was read
}

func (s *stdinSource) Read(b []byte) (int, error) {
	n, err := s.body.Read(b)
	if err != nil {
		s.sawEOF.Store(err == io.EOF)
		s.done.Store(true)
		if err != io.EOF && !s.p.failBody(err) {
			err = io.EOF // woken on purpose once the child was gone: nothing to report
		}
	}
	return n, err
}

func (s *stdinSource) WriteTo(w io.Writer) (int64, error) {
	defer s.done.Store(true)
	bp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bp)
	buf := *bp
	var total int64
	for {
		n, rerr := s.body.Read(buf)
		if n > 0 {
			m, werr := w.Write(buf[:n])
			total += int64(m)
			if werr != nil {
				// Returned as is: exec.Cmd recognises EPIPE (the child stopped reading, as
				// `head -c` does) and does not treat it as a failure.
				return total, werr
			}
		}
		if rerr == io.EOF {
			s.sawEOF.Store(true)
			return total, nil
		}
		if rerr != nil {
			if !s.p.failBody(rerr) {
				return total, nil // woken on purpose once the child was gone
			}
			return total, rerr
		}
	}
}

var copyBufPool = sync.Pool{New: func() any {
	b := make([]byte, 32<<10)
	return &b
}}

// Output buffers are reused across requests; one that grew past maxPooledBuffer is left to
// the garbage collector so that a single huge response does not stay resident.
const maxPooledBuffer = 1 << 20

var outBufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func getBuffer() *bytes.Buffer {
	b := outBufPool.Get().(*bytes.Buffer)
	b.Reset()
	return b
}

func putBuffer(b *bytes.Buffer) {
	if b.Cap() <= maxPooledBuffer {
		outBufPool.Put(b)
	}
}

// joinArgv is the inverse of the single-space split, for configs built by hand.
func joinArgv(argv []string) string {
	return strings.Join(argv, " ")
}
