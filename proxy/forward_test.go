package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"faasd/supervisor"
)

// replica serves handler as a function named fn behind a fresh proxy; configure, if
// given, sets the replica's server up before it starts.
func replica(t *testing.T, handler http.HandlerFunc, configure ...func(*http.Server)) (proxyURL string, upstream *httptest.Server) {
	t.Helper()
	upstream = httptest.NewUnstartedServer(handler)
	for _, c := range configure {
		c(upstream.Config)
	}
	upstream.Start()
	t.Cleanup(upstream.Close)
	rt := supervisor.NewStaticRoute(spec("fn"), strings.TrimPrefix(upstream.URL, "http://"))
	return newProxy(t, routes{"fn": rt}, time.Second, 0).URL, upstream
}

func TestBodiesStreamBothWaysWhateverTheirFraming(t *testing.T) {
	url, _ := replica(t, func(w http.ResponseWriter, r *http.Request) {
		// Echoes as it reads: both directions stream at once.
		http.NewResponseController(w).EnableFullDuplex()
		if r.URL.Query().Get("chunked") == "" {
			w.Header().Set("Content-Length", r.Header.Get("X-Len"))
		}
		io.Copy(w, r.Body)
	})
	big := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB: streamed, not inline
	for _, tc := range []struct {
		name  string
		body  []byte
		query string
		known bool // the client says the length
	}{
		{"small, known length", []byte("hello"), "", true},
		{"small, chunked request", []byte("hello"), "", false},
		{"large, known length", big, "", true},
		{"large, chunked request and response", big, "?chunked=1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader = bytes.NewReader(tc.body)
			if !tc.known {
				body = io.MultiReader(body) // hides the length: sent chunked
			}
			req, _ := http.NewRequest("POST", url+"/function/fn/"+tc.query, body)
			req.Header.Set("X-Len", fmt.Sprint(len(tc.body)))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || !bytes.Equal(got, tc.body) {
				t.Fatalf("status %d, %d bytes back of %d, err %v", resp.StatusCode, len(got), len(tc.body), err)
			}
		})
	}
}

func TestHopByHopFieldsStayOnTheirHop(t *testing.T) {
	var seen http.Header
	url, _ := replica(t, func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Clone()
		w.Header().Set("Connection", "X-Secret")
		w.Header().Set("X-Secret", "hop")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-Kept", "yes")
		w.Header().Add("Set-Cookie", "a=1")
		w.Header().Add("Set-Cookie", "b=2")
		io.WriteString(w, "ok")
	})
	req, _ := http.NewRequest("GET", url+"/function/fn/", nil)
	req.Header.Set("Connection", "X-Private")
	req.Header.Set("X-Private", "hop")
	req.Header.Set("X-Passed", "yes")
	req.Header.Set("Forwarded", "for=198.51.100.1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if seen.Get("X-Private") != "" || seen.Get("Forwarded") != "" || seen.Get("X-Passed") != "yes" {
		t.Errorf("the replica saw %v", seen)
	}
	if resp.Header.Get("X-Secret") != "" || resp.Header.Get("Keep-Alive") != "" || resp.Header.Get("X-Kept") != "yes" {
		t.Errorf("the client saw %v", resp.Header)
	}
	if got := resp.Header.Values("Set-Cookie"); len(got) != 2 {
		t.Errorf("Set-Cookie %q, want both", got)
	}
}

func TestHeadNoContentAndTrailers(t *testing.T) {
	url, _ := replica(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/none":
			w.WriteHeader(http.StatusNoContent)
		case "/trailer":
			w.Header().Set("Trailer", "X-Sum")
			io.WriteString(w, "data")
			w.(http.Flusher).Flush()
			w.Header().Set("X-Sum", "42")
		default:
			w.Header().Set("Content-Length", "5")
			if r.Method != http.MethodHead {
				io.WriteString(w, "hello")
			}
		}
	})
	resp, err := http.Head(url + "/function/fn/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ContentLength != 5 {
		t.Errorf("HEAD: %d, length %d", resp.StatusCode, resp.ContentLength)
	}
	resp, body := get(t, url+"/function/fn/none")
	if resp.StatusCode != http.StatusNoContent || body != "" {
		t.Errorf("204: %d %q", resp.StatusCode, body)
	}
	resp, body = get(t, url+"/function/fn/trailer")
	if body != "data" || resp.Trailer.Get("X-Sum") != "42" {
		t.Errorf("trailer: %q %v", body, resp.Trailer)
	}
	// The connection to the replica is still good after all of that.
	if resp, body := get(t, url+"/function/fn/"); body != "hello" {
		t.Errorf("after: %d %q", resp.StatusCode, body)
	}
}

func TestIdleConnectionClosedByTheReplicaIsNotAnError(t *testing.T) {
	var conns atomic.Int64
	url, _ := replica(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}, func(s *http.Server) {
		s.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		}
		// Keep-alive connections the replica closes when idle, as Node.js does after 5 s.
		s.IdleTimeout = 20 * time.Millisecond
	})
	for i := range 5 {
		resp, err := http.Post(url+"/function/fn/", "text/plain", strings.NewReader("body"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("request %d after an idle close: %d", i, resp.StatusCode)
		}
		waitUntil(t, func() bool { return conns.Load() == int64(i+1) })
		time.Sleep(60 * time.Millisecond) // past the replica's idle timeout
	}
}

// A connection idle for longer than its last call took is still good: the deadline that
// call set has passed, and must not make the check before reuse take it for closed.
func TestIdleConnectionIsReusedPastTheDeadlineOfItsLastCall(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			defer c.Close()
		}
	}()
	cp := &connPool{addr: ln.Addr().String()}
	now := time.Now()
	u, err := cp.get(t.Context(), now, time.Time{}, false)
	if err != nil {
		t.Fatal(err)
	}
	u.setDeadline(now.Add(-time.Second)) // what the last call set, long past
	cp.put(u, now.Add(-time.Second))
	again, err := cp.get(t.Context(), now, time.Time{}, true)
	if err != nil {
		t.Fatal(err)
	}
	defer again.conn.Close()
	if again != u || !again.reused {
		t.Fatalf("the idle connection was closed and another dialed (%d accepted)", accepted.Load())
	}
}

func TestReplicaMayAnswerBeforeReadingTheBody(t *testing.T) {
	url, _ := replica(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no thanks", http.StatusForbidden)
	})
	// Larger than what the sockets between hold, under the limit of 1 MiB.
	if code, got := postChunked(t, url+"/function/fn/", 1000<<10); code != http.StatusForbidden || !strings.Contains(got, "no thanks") {
		t.Fatalf("%d %q", code, got)
	}
}

// postChunked posts n zero bytes without saying how many, and returns the answer.
func postChunked(t *testing.T, url string, n int) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/octet-stream", io.MultiReader(bytes.NewReader(make([]byte, n))))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(got)
}

func TestChunkedBodyOverTheLimitIs413AndReachesNoReplyFromTheReplica(t *testing.T) {
	url, _ := replica(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "read it all")
	})
	// The limit is 1 MiB.
	if code, got := postChunked(t, url+"/function/fn/", 2<<20); code != http.StatusRequestEntityTooLarge || !strings.Contains(got, "over the limit") {
		t.Fatalf("%d %q", code, got)
	}
}

func TestMalformedResponsesAre502(t *testing.T) {
	for _, raw := range []string{
		"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
		"HTTP/2 200 OK\r\n\r\n",
		"HTTP/1.1 2x0 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\nx",
	} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			http.ReadRequest(bufio.NewReader(c))
			io.WriteString(c, raw)
			c.Close()
		}()
		rt := supervisor.NewStaticRoute(spec("fn"), ln.Addr().String())
		srv := newProxy(t, routes{"fn": rt}, time.Second, 0)
		resp, body := get(t, srv.URL+"/function/fn/")
		ln.Close()
		if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("X-Call-Id") == "" {
			t.Errorf("%q: %d %q", raw, resp.StatusCode, body)
		}
	}
}

func TestResponseReadUntilCloseStreams(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	release := make(chan struct{})
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		http.ReadRequest(bufio.NewReader(c))
		// HTTP/1.0 style: no length, the body ends with the connection.
		io.WriteString(c, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nfirst\n")
		<-release
		io.WriteString(c, "second\n")
	}()
	rt := supervisor.NewStaticRoute(spec("fn"), ln.Addr().String())
	srv := newProxy(t, routes{"fn": rt}, time.Second, 0)
	resp, err := http.Get(srv.URL + "/function/fn/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if line, _ := br.ReadString('\n'); line != "first\n" {
		t.Fatalf("first line %q", line)
	}
	close(release)
	if rest, _ := io.ReadAll(br); string(rest) != "second\n" {
		t.Fatalf("rest %q", rest)
	}
}

func TestInvokeServesAnyResponseWriter(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", r.URL.Path, r.Header.Get("X-Forwarded-Prefix"))
	}))
	defer upstream.Close()
	rt := supervisor.NewStaticRoute(spec("fn"), strings.TrimPrefix(upstream.URL, "http://"))
	p := New(Options{Backends: routes{"fn": rt}, MaxBodyBytes: 1 << 20, HoldTimeout: time.Second})
	rec := httptest.NewRecorder()
	p.Invoke(rec, httptest.NewRequest("POST", "/async-function/fn/x", strings.NewReader("job")), "fn", "/x")
	if rec.Code != 200 || rec.Body.String() != "/x /function/fn" || rec.Header().Get("X-Call-Id") == "" {
		t.Fatalf("%d %q %v", rec.Code, rec.Body, rec.Header())
	}
	rec = httptest.NewRecorder()
	p.Invoke(rec, httptest.NewRequest("POST", "/async-function/nope", nil), "nope", "")
	if rec.Code != http.StatusNotFound {
		t.Fatalf("unknown function: %d", rec.Code)
	}
	if s := p.Stats("fn"); s.Requests != 1 || s.InFlight != 0 {
		t.Fatalf("stats %+v", s)
	}
}
