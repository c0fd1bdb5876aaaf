package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"faasd/config"
	"faasd/internal/testkit"
	"faasd/supervisor"
)

// boundedGateway serves a function fn (on upstream) and the API behind credentials with
// short timeouts: reading a request 300 ms, the function's 500 ms.
func boundedGateway(t *testing.T, upstream string, opts Options) *httptest.Server {
	t.Helper()
	fn := &config.Function{Name: "fn", Timeout: 500 * time.Millisecond}
	opts.Backends = routes{"fn": supervisor.NewStaticRoute(fn, upstream)}
	opts.MaxBodyBytes, opts.HoldTimeout = 1<<20, time.Second
	opts.ReadTimeout, opts.WriteTimeout, opts.ReadHeaderTimeout = 300*time.Millisecond, time.Second, time.Second
	opts.Catalog, opts.Credentials = emptyCatalog{}, &Credentials{User: "admin", Password: "secret"}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return serve(t, New(opts))
}

// closedWithin reports whether the server closes conn within d, reading whatever it
// answers before.
func closedWithin(conn net.Conn, d time.Duration) (bool, string) {
	conn.SetReadDeadline(time.Now().Add(d))
	got, err := io.ReadAll(conn)
	return err == nil, string(got)
}

func TestClientsThatPromiseABodyAndSendNoneAreCut(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(echoReplica))
	t.Cleanup(upstream.Close) // after the parallel subtests
	srv := boundedGateway(t, strings.TrimPrefix(upstream.URL, "http://"), Options{})
	for _, head := range []string{
		"GET /healthz HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n",
		"GET /metrics HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n",
		"GET /nowhere HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n",                    // 404
		"POST /system/functions HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n",          // 401
		"POST /function/nope HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n",             // 404
		"POST /function/fn/ HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n", // the function's timeout
	} {
		for _, afterCall := range []bool{false, true} { // net/http reads it, or the fast path
			t.Run(strings.Fields(head)[1], func(t *testing.T) {
				t.Parallel()
				c := dialRaw(t, srv)
				if afterCall {
					if resp, _ := c.do("GET /function/fn/ HTTP/1.1\r\nHost: h\r\n\r\n"); resp.StatusCode != 200 {
						t.Fatalf("first call: %d", resp.StatusCode)
					}
				}
				io.WriteString(c.conn, head)
				if closed, got := closedWithin(c.conn, 5*time.Second); !closed {
					t.Errorf("after a call: %v: still open after 5s, having answered %q", afterCall, got)
				}
			})
		}
	}
}

// silentReplica accepts connections, reads what comes and never answers.
func silentReplica(t *testing.T) string {
	return rawServer(t, func(c net.Conn) { io.Copy(io.Discard, c) })
}

const wsHead = "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"

func TestUpgradesAreBoundedUntilTheReplicaSwitches(t *testing.T) {
	srv := boundedGateway(t, silentReplica(t), Options{})
	for _, raw := range []string{
		"GET /function/fn/ws HTTP/1.1\r\nHost: h\r\n" + wsHead + "\r\n",
		"POST /function/fn/ws HTTP/1.1\r\nHost: h\r\n" + wsHead + "Content-Length: 1\r\n\r\nx",
		"PUT /function/fn/ws HTTP/1.1\r\nHost: h\r\n" + wsHead + "Content-Length: 10\r\n\r\n", // and no body
	} {
		c := dialRaw(t, srv)
		io.WriteString(c.conn, raw)
		// The function's timeout (500 ms) ends the wait: with a 504, or, for a client
		// that never sent the body it announced, with the connection.
		c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(c.br, nil)
		if err == nil && resp.StatusCode != http.StatusGatewayTimeout || err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && err != io.EOF {
			t.Errorf("%s: %v %v, want a 504 or the end of the connection", strings.Fields(raw)[0], resp, err)
		}
	}
}

// switchingReplica answers a WebSocket handshake with 101 and then echoes; it says 200
// to anything else.
func switchingReplica(t *testing.T) string {
	return rawServer(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		r, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		if r.Header.Get("Upgrade") == "" {
			io.Copy(io.Discard, r.Body)
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nno switch")
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
		io.Copy(c, br)
	})
}

func TestOnlyGETSwitchesAndTheSwitchedStreamOutlivesTheTimeouts(t *testing.T) {
	srv := boundedGateway(t, switchingReplica(t), Options{})
	c := dialRaw(t, srv)
	for _, raw := range []string{
		"POST /function/fn/ws HTTP/1.1\r\nHost: h\r\n" + wsHead + "Content-Length: 1\r\n\r\nx",
		"GET /function/fn/ws HTTP/1.1\r\nHost: h\r\n" + wsHead + "Content-Length: 1\r\n\r\nx",
	} {
		if resp, body := c.do(raw); resp.StatusCode != 200 || body != "no switch" {
			t.Fatalf("%s with Upgrade and a body: %d %q, want a plain call", strings.Fields(raw)[0], resp.StatusCode, body)
		}
	}

	c = dialRaw(t, srv)
	io.WriteString(c.conn, "GET /function/fn/ws HTTP/1.1\r\nHost: h\r\n"+wsHead+"\r\n")
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("GET with Upgrade: %v %v", resp, err)
	}
	// Past the function's timeout (500 ms) and the read timeout (300 ms), the stream
	// still carries what either end says.
	time.Sleep(800 * time.Millisecond)
	io.WriteString(c.conn, "still there")
	buf := make([]byte, len("still there"))
	if _, err := io.ReadFull(c.br, buf); err != nil || string(buf) != "still there" {
		t.Fatalf("echo after the timeouts: %q %v", buf, err)
	}
}

func TestConnectionsPerClientAreCapped(t *testing.T) {
	var logs testkit.SyncBuffer
	srv := boundedGateway(t, silentReplica(t), Options{
		MaxConnsPerClient: 3,
		Logger:            slog.New(slog.NewTextHandler(&logs, nil)),
	})
	var open []*rawClient
	for range 3 {
		c := dialRaw(t, srv)
		if resp, _ := c.do("GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n"); resp.StatusCode != 200 {
			t.Fatalf("within the cap: %d", resp.StatusCode)
		}
		open = append(open, c)
	}
	over := dialRaw(t, srv)
	if closed, got := closedWithin(over.conn, 5*time.Second); !closed || !strings.HasPrefix(got, "HTTP/1.1 503") {
		t.Fatalf("over the cap: closed %v, answered %q", closed, got)
	}
	waitUntil(t, func() bool { return strings.Contains(logs.String(), "max_conns_per_client=3") })
	if line := logs.String(); !strings.Contains(line, "client=127.0.0.1") {
		t.Errorf("log %q does not name the client", line)
	}
	// A connection that ends frees its place, whoever closes it.
	open[0].conn.Close()
	waitUntil(t, func() bool {
		c := dialRaw(t, srv)
		defer c.conn.Close()
		io.WriteString(c.conn, "GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n")
		resp, err := http.ReadResponse(c.br, nil)
		return err == nil && resp.StatusCode == 200
	})
}

func TestTrustedProxiesAreNotCapped(t *testing.T) {
	srv := boundedGateway(t, silentReplica(t), Options{
		MaxConnsPerClient: 1,
		TrustedProxies:    []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	})
	for range 5 {
		c := dialRaw(t, srv)
		if resp, _ := c.do("GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n"); resp.StatusCode != 200 {
			t.Fatalf("from a trusted proxy: %d", resp.StatusCode)
		}
	}
}

func TestCappedConnectionsAreStillTakenOverAndWatched(t *testing.T) {
	live := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-r.Context().Done()
			return
		}
		io.WriteString(w, "ok")
	}))
	defer live.Close()
	fn := &config.Function{Name: "fn", Timeout: time.Minute}
	p := New(Options{
		Backends: routes{"fn": supervisor.NewStaticRoute(fn, strings.TrimPrefix(live.URL, "http://"))}, MaxBodyBytes: 1 << 20,
		HoldTimeout: time.Second, MaxConnsPerClient: 10, ReadHeaderTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond,
	})
	srv := serve(t, p)
	c := dialRaw(t, srv)
	c.do("GET /function/fn/ HTTP/1.1\r\nHost: h\r\n\r\n")
	io.WriteString(c.conn, "GET /function/fn/slow HTTP/1.1\r\nHost: h\r\n\r\n")
	waitUntil(t, func() bool { return p.Stats("fn").InFlight == 1 })
	// Past the head's and the read timeout, the call still notices its client leave.
	time.Sleep(400 * time.Millisecond)
	c.conn.Close()
	waitUntil(t, func() bool { return p.Stats("fn").InFlight == 0 })
	// The connection's goroutine lets go of it just after the call's count drops.
	waitUntil(t, func() bool { return countFast(p) == 0 })
}

func countFast(p *Proxy) int {
	n := 0
	p.fastConns.Range(func(any, any) bool { n++; return true })
	return n
}

// emptyCatalog is an API with no functions, enough for its routes to exist.
type emptyCatalog struct{ Catalog }

func TestForwardingFieldsAreBelievedOnlyFromTrustedProxies(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, k := range []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Forwarded-Prefix", "X-Real-Ip", "Forwarded", "X_forwarded_for"} {
			fmt.Fprintf(w, "%s=%s\n", k, strings.Join(r.Header.Values(k), "|"))
		}
	}))
	defer upstream.Close()
	const sent = "X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Host: evil.example\r\nX-Forwarded-Proto: https\r\n" +
		"X-Forwarded-Prefix: /outer/\r\nX-Real-Ip: 203.0.113.9\r\nForwarded: for=203.0.113.9\r\nX_Forwarded_For: 203.0.113.66\r\n"
	for _, tc := range []struct {
		name    string
		trusted []netip.Prefix
		want    string
	}{
		{"from a client", nil, "X-Forwarded-For=127.0.0.1\nX-Forwarded-Host=fn.example\nX-Forwarded-Proto=http\n" +
			"X-Forwarded-Prefix=/function/fn\nX-Real-Ip=\nForwarded=\nX_forwarded_for=\n"},
		{"from a trusted proxy", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, "X-Forwarded-For=203.0.113.9, 127.0.0.1\n" +
			"X-Forwarded-Host=evil.example\nX-Forwarded-Proto=https\nX-Forwarded-Prefix=/outer/function/fn\nX-Real-Ip=203.0.113.9\n" +
			"Forwarded=\nX_forwarded_for=\n"},
	} {
		srv := boundedGateway(t, strings.TrimPrefix(upstream.URL, "http://"), Options{TrustedProxies: tc.trusted})
		c := dialRaw(t, srv)
		for _, path := range []string{"net/http", "fast path"} {
			if _, got := c.do("GET /function/fn/ HTTP/1.1\r\nHost: fn.example\r\n" + sent + "\r\n"); got != tc.want {
				t.Errorf("%s, %s: the function saw\n%s\nwant\n%s", tc.name, path, got, tc.want)
			}
		}
	}
}
