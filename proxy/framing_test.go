package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"faasd/supervisor"
)

// The framing of requests and responses as the gateway reads it on its own (the fast
// path's request heads and bodies, the replicas' responses) must be net/http's, or
// stricter: a message that two readers frame differently is how requests are smuggled
// and responses reach the wrong caller.

// echoReplica answers every call with the body it received.
func echoReplica(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "replica: "+err.Error(), http.StatusTeapot)
		return
	}
	w.Write(body)
}

// oneAnswer writes raw on conn and reads one response: its status and body, or 0 when
// the connection ended without one.
func oneAnswer(t *testing.T, conn net.Conn, br *bufio.Reader, raw string) (int, string) {
	t.Helper()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		return 0, err.Error()
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return 0, err.Error()
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(body)
}

// requestFraming are chunked bodies whose framing is odd. netHTTP says whether
// net/http's server reads the body whole, fast whether the gateway passes it on: never
// when net/http would not, and a little less often (obs-fold, which RFC 9112 lets a
// server refuse).
var requestFraming = []struct {
	name, raw     string
	netHTTP, fast bool
}{
	{"chunk extension", "5;a=b\r\nhello\r\n0\r\n\r\n", true, true},
	{"upper-case size", "A\r\n0123456789\r\n0\r\n\r\n", true, true},
	{"spaces after the size", "5  \r\nhello\r\n0\r\n\r\n", true, true},
	{"trailer", "5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n", true, true},
	{"space before an extension", "5 ;a=b\r\nhello\r\n0\r\n\r\n", false, false},
	{"garbage after the size", "5 x\r\nhello\r\n0\r\n\r\n", false, false},
	{"17 digits", "00000000000000005\r\nhello\r\n0\r\n\r\n", false, false},
	{"empty size", "\r\n5\r\nhello\r\n0\r\n\r\n", false, false},
	{"negative size", "-5\r\nhello\r\n0\r\n\r\n", false, false},
	{"0x prefix", "0x5\r\nhello\r\n0\r\n\r\n", false, false},
	{"bare LF after the size", "5\nhello\r\n0\r\n\r\n", false, false},
	{"CR inside the size line", "5\r;x\r\nhello\r\n0\r\n\r\n", false, false},
	{"bare LF after the data", "5\r\nhello\n0\r\n\r\n", false, false},
	{"CR CR LF after the data", "5\r\nhello\r\r\n0\r\n\r\n", false, false},
	{"data longer than the size", "5\r\nhelloXX\r\n0\r\n\r\n", false, false},
	{"bare LF after the last chunk", "5\r\nhello\r\n0\n\r\n", false, false},
	{"trailer without a colon", "5\r\nhello\r\n0\r\nno colon\r\n\r\n", false, false},
	{"trailer with a NUL", "5\r\nhello\r\n0\r\nX: a\x00b\r\n\r\n", false, false},
	{"trailer folded", "5\r\nhello\r\n0\r\nX: a\r\n b\r\n\r\n", true, false},
	{"too much framing", strings.Repeat("1;"+strings.Repeat("e", 200)+"\r\nx\r\n", 100) + "0\r\n\r\n", false, false},
}

func TestChunkedRequestsAreFramedAsNetHTTPFramesThem(t *testing.T) {
	url, _ := replica(t, echoReplica)
	var mu sync.Mutex
	var refErr error
	ref := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		mu.Lock()
		refErr = err
		mu.Unlock()
		w.Write(body)
	}))
	defer ref.Close()
	head := "POST /function/fn/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
	for _, tc := range requestFraming {
		// The fast path reads every body of a call, on the first request of a connection
		// (taken over from net/http) as on the following ones.
		for _, warm := range []bool{false, true} {
			c := dialRaw(t, &httptest.Server{URL: url})
			if warm {
				if code, _ := oneAnswer(t, c.conn, c.br, "GET /function/fn/ HTTP/1.1\r\nHost: h\r\n\r\n"); code != 200 {
					t.Fatalf("first call: %d", code)
				}
			}
			code, body := oneAnswer(t, c.conn, c.br, head+tc.raw)
			c.conn.Close()

			rc := dialRaw(t, ref)
			refCode, refBody := oneAnswer(t, rc.conn, rc.br, head+tc.raw)
			rc.conn.Close()
			mu.Lock()
			refOK := refCode == 200 && refErr == nil
			mu.Unlock()
			if refOK != tc.netHTTP {
				t.Fatalf("%s: net/http's server read it whole: %v (%d %q), the table says %v", tc.name, refOK, refCode, refBody, tc.netHTTP)
			}
			switch {
			case tc.fast && (code != 200 || body != refBody):
				t.Errorf("%s (after a call: %v): %d %q, want 200 %q", tc.name, warm, code, body, refBody)
			case !tc.fast && (code != http.StatusBadRequest || !strings.Contains(body, "request body")):
				t.Errorf("%s (after a call: %v): %d %q, want 400: net/http refuses it", tc.name, warm, code, body)
			}
		}
	}
}

// scriptedReplica answers the requests it gets, on whichever connection, in turn with the
// raw responses given, and with "fresh" after them. It returns its address and a count
// of the connections it accepted.
func scriptedReplica(t *testing.T, answers ...string) (string, func() int) {
	t.Helper()
	var mu sync.Mutex
	conns, served := 0, 0
	addr := rawServer(t, func(c net.Conn) {
		mu.Lock()
		conns++
		mu.Unlock()
		br := bufio.NewReader(c)
		for {
			r, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.Copy(io.Discard, r.Body)
			answer := "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh"
			mu.Lock()
			if served < len(answers) {
				answer = answers[served]
			}
			served++
			mu.Unlock()
			if _, err := io.WriteString(c, answer); err != nil {
				return
			}
		}
	})
	return addr, func() int { mu.Lock(); defer mu.Unlock(); return conns }
}

// rawServer serves each connection it accepts on loopback with handle, which may
// return to close it, until the test ends.
func rawServer(t *testing.T, handle func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return ln.Addr().String()
}

func TestBytesPastAResponseNeverReachTheNextCaller(t *testing.T) {
	const poison = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nPOISON"
	for _, tc := range []struct{ name, method, answer string }{
		{"longer than its length", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + poison},
		{"a body to HEAD", "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n" + poison},
		{"a body with 204", "GET", "HTTP/1.1 204 No Content\r\n\r\n" + poison},
		{"more after the last chunk", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n" + poison},
		{"both framings", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n2\r\nok\r\n0\r\n\r\n"},
	} {
		addr, conns := scriptedReplica(t, tc.answer)
		srv := newProxy(t, routes{"fn": supervisor.NewStaticRoute(spec("fn"), addr)}, time.Second, 0)
		req, _ := http.NewRequest(tc.method, srv.URL+"/function/fn/", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		// Another caller, right after: a fresh answer on a fresh connection.
		if _, body := get(t, srv.URL+"/function/fn/"); body != "fresh" || conns() != 2 {
			t.Errorf("%s: the next caller got %q on the replica's connection %d", tc.name, body, conns())
		}
	}
}

func TestResponseFieldsThatWouldSplitTheResponseAre502(t *testing.T) {
	for _, answer := range []string{
		"HTTP/1.1 200 OK\r\nX-Evil: a\rSet-Cookie: pwned=1\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nX-Evil: a\x00b\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nX-Evil: a\x7fb\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
	} {
		for _, warm := range []bool{false, true} { // net/http's writer, then the fast path's
			answers := []string{answer}
			if warm {
				answers = []string{"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nwarm", answer}
			}
			addr, _ := scriptedReplica(t, answers...)
			srv := newProxy(t, routes{"fn": supervisor.NewStaticRoute(spec("fn"), addr)}, time.Second, 0)
			c := dialRaw(t, srv)
			if warm {
				oneAnswer(t, c.conn, c.br, "GET /function/fn/ HTTP/1.1\r\nHost: h\r\n\r\n")
			}
			if code, body := oneAnswer(t, c.conn, c.br, "GET /function/fn/ HTTP/1.1\r\nHost: h\r\n\r\n"); code != http.StatusBadGateway {
				t.Errorf("%q (after a call: %v): %d %q, want 502", answer, warm, code, body)
			}
		}
	}
}

func TestTrailersThatMustNotBeTrailersAreDropped(t *testing.T) {
	addr, _ := scriptedReplica(t, fmt.Sprint(
		"HTTP/1.1 200 OK\r\nTrailer: Content-Length, X-Sum, Set-Cookie\r\nTransfer-Encoding: chunked\r\n\r\n",
		"2\r\nok\r\n0\r\nContent-Length: 9\r\nSet-Cookie: a=1\r\nTransfer-Encoding: gzip\r\nX-Sum: 42\r\n\r\n"))
	srv := newProxy(t, routes{"fn": supervisor.NewStaticRoute(spec("fn"), addr)}, time.Second, 0)
	resp, body := get(t, srv.URL+"/function/fn/")
	if body != "ok" || len(resp.Trailer) != 1 || resp.Trailer.Get("X-Sum") != "42" {
		t.Fatalf("%q, trailer %v; want only X-Sum", body, resp.Trailer)
	}
}

func TestChunkSizeLines(t *testing.T) {
	for _, tc := range []struct {
		line string
		size int64 // -1: refused
	}{
		{"5\r\n", 5}, {"fF\r\n", 255}, {"5;ext=1\r\n", 5}, {"5 \t\r\n", 5}, {"0\r\n", 0},
		{"7fffffffffffffff\r\n", 1<<63 - 1},
		{"8000000000000000\r\n", -1}, // past int64, though net/http takes it as uint64
		{"5\n", -1}, {"\r\n", -1}, {"5 ;x\r\n", -1}, {"5\r;\r\n", -1}, {" 5\r\n", -1},
		{"g\r\n", -1}, {"00000000000000005\r\n", -1}, {"5;" + strings.Repeat("x", maxChunkLine) + "\r\n", -1},
	} {
		size, err := chunkSize([]byte(tc.line))
		if (err != nil) != (tc.size < 0) || (err == nil && size != tc.size) {
			t.Errorf("%q: %d %v, want %d", tc.line, size, err, tc.size)
		}
	}
}
