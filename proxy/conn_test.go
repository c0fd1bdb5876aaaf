package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"faasd/config"
	"faasd/queue"
	"faasd/supervisor"
)

// rawClient sends requests one after another on one connection, as a keep-alive client.
type rawClient struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
}

func dialRaw(t *testing.T, srv *httptest.Server) *rawClient {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawClient{t: t, conn: conn, br: bufio.NewReader(conn)}
}

func (c *rawClient) do(raw string) (*http.Response, string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, raw); err != nil {
		c.t.Fatal(err)
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.t.Fatalf("%q: %v", strings.SplitN(raw, "\r\n", 2)[0], err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp, string(body)
}

func TestOneConnectionMixesCallsAndTheRestOfTheGateway(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %d:%s", r.Method, r.URL.RequestURI(), len(body), body[:min(len(body), 5)])
	}))
	defer upstream.Close()
	rt := supervisor.NewStaticRoute(spec("fn"), strings.TrimPrefix(upstream.URL, "http://"))
	srv := newProxy(t, routes{"fn": rt}, time.Second, 0)
	c := dialRaw(t, srv)
	big := strings.Repeat("z", 100<<10)
	chunked := fmt.Sprintf("%x\r\n%s\r\n5\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n", len(big), big)
	for _, tc := range []struct{ raw, want string }{
		{"GET /function/fn/a?x=1 HTTP/1.1\r\nHost: h\r\n\r\n", "GET /a?x=1 0:"},
		{"POST /function/fn/b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello", "POST /b 5:hello"},
		{"POST /function/fn/c HTTP/1.1\r\nhost: h\r\ntransfer-encoding: chunked\r\n\r\n" + chunked, fmt.Sprintf("POST /c %d:zzzzz", len(big)+5)},
		{"PUT /function/fn/%64 HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", "PUT /%64 0:"}, // the path as the client escaped it,
		{"GET /function/nope/ HTTP/1.1\r\nHost: h\r\n\r\n", "error finding function nope"},
		// Not a call: the connection goes back to net/http, which serves it from then on.
		{"GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n", "OK"},
		{"POST /function/fn/e HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi", "POST /e 2:hi"},
	} {
		resp, body := c.do(tc.raw)
		if !strings.Contains(body, tc.want) {
			t.Errorf("%q: %d %q, want %q", strings.SplitN(tc.raw, "\r\n", 2)[0], resp.StatusCode, body, tc.want)
		}
	}
}

func TestOddRequestsOnATakenOverConnectionAreLeftToNetHTTP(t *testing.T) {
	url, _ := replica(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	for _, tc := range []struct {
		raw  string
		code int
	}{
		{"TRACE /function/fn/ HTTP/1.1\r\nHost: h\r\n\r\n", http.StatusMethodNotAllowed},
		{"GET /function/fn/ HTTP/1.1\r\nHost: h\r\nX-Bad: a\x01b\r\n\r\n", http.StatusBadRequest},
		{"GET /function/fn/ HTTP/1.1\r\nHost: a b\r\n\r\n", http.StatusBadRequest},
		{"GET /function/fn/ HTTP/1.1\r\nHost: user@h\r\n\r\n", http.StatusBadRequest},
		{"GET /function/fn/ HTTP/1.1\r\nHost:\r\nHost: h\r\n\r\n", http.StatusBadRequest},
		{"GET /function/fn/ HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\nHost: h\r\n\r\n", http.StatusBadRequest},
		{"POST /function/fn/ HTTP/1.1\r\nContent-Length: +1\r\nHost: h\r\n\r\nx", http.StatusBadRequest},
		{"GET /function/fn/ HTTP/1.1\r\nHost: h\r\n\r\n", http.StatusOK}, // and it stays usable
	} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		c := &rawClient{t: t, conn: conn, br: bufio.NewReader(conn)}
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		if resp, _ := c.do("GET /function/fn/ HTTP/1.1\r\nHost: h\r\n\r\n"); resp.StatusCode != 200 {
			t.Fatalf("first call: %d", resp.StatusCode)
		}
		if resp, body := c.do(tc.raw); resp.StatusCode != tc.code {
			t.Errorf("%q: %d %q, want %d", tc.raw, resp.StatusCode, body, tc.code)
		}
		conn.Close()
	}
}

func TestClientThatLeavesATakenOverConnectionStopsWaiting(t *testing.T) {
	live := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-r.Context().Done() // until the gateway gives up on it
			return
		}
		io.WriteString(w, "ok")
	}))
	defer live.Close()
	idle := supervisor.NewStaticRoute(spec("idle"))
	fn := supervisor.NewStaticRoute(spec("fn"), strings.TrimPrefix(live.URL, "http://"))
	srv := newProxy(t, routes{"fn": fn, "idle": idle}, time.Minute, 0)
	p := srv.Config.Handler.(*Proxy)
	for _, tc := range []struct{ name, path string }{
		{"idle", "/function/idle/"}, // held: no replica
		{"fn", "/function/fn/slow"}, // the replica takes its time
	} {
		c := dialRaw(t, srv)
		if resp, _ := c.do("GET /function/fn/ HTTP/1.1\r\nHost: h\r\n\r\n"); resp.StatusCode != 200 {
			t.Fatalf("first call: %d", resp.StatusCode)
		}
		fmt.Fprintf(c.conn, "GET %s HTTP/1.1\r\nHost: h\r\n\r\n", tc.path)
		waitUntil(t, func() bool { return p.Stats(tc.name).InFlight == 1 })
		c.conn.Close()
		waitUntil(t, func() bool { s := p.Stats(tc.name); return s.InFlight == 0 && s.Held == 0 })
	}
}

func TestShutdownClosesIdleTakenOverConnections(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer upstream.Close()
	rt := supervisor.NewStaticRoute(spec("fn"), strings.TrimPrefix(upstream.URL, "http://"))
	p := New(Options{Backends: routes{"fn": rt}, MaxBodyBytes: 1 << 20, HoldTimeout: time.Second})
	srv := httptest.NewUnstartedServer(p)
	srv.Config.RegisterOnShutdown(p.Close)
	srv.Start()
	defer srv.Close()
	c := dialRaw(t, srv)
	if resp, _ := c.do("GET /function/fn/ HTTP/1.1\r\nHost: h\r\n\r\n"); resp.StatusCode != 200 {
		t.Fatalf("call: %d", resp.StatusCode)
	}
	if err := srv.Config.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n, err := c.br.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("the idle connection stayed open: %d %v", n, err)
	}
}

func TestTheReplicaSeesThePathAsSentWhicheverPathServesIt(t *testing.T) {
	url, _ := replica(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.RequestURI) })
	for _, path := range []string{"/x!'()*", "/a[b]", "/%21", "/a;b=c,d", "/~user/@x", "/q?x=!&y=[1]"} {
		c := dialRaw(t, &httptest.Server{URL: url})
		raw := "GET /function/fn" + path + " HTTP/1.1\r\nHost: h\r\n\r\n"
		_, first := c.do(raw)  // net/http read it
		_, second := c.do(raw) // the fast path did
		if first != path || second != path {
			t.Errorf("%s reached the replica as %s, then as %s", path, first, second)
		}
	}
}

func TestAFunctionIsNamedByThePathItForwards(t *testing.T) {
	url, _ := replica(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.RequestURI) })
	for _, tc := range []struct {
		path string
		code int
		want string // what the replica saw, or what the 404 says
	}{
		{"/function/fn/a%2Fb", 200, "/a%2Fb"},
		{"/function/fn%2Fx/y", 404, "no such function"},
		{"/function/fn%2F", 404, "no such function"},
		{"/function/%66n/y", 200, "/y"},
		{"/function/fn.openfaas-fn/z", 200, "/z"},
		{"/function%2Ffn/y", 404, "404 page not found"},
	} {
		c := dialRaw(t, &httptest.Server{URL: url})
		raw := "GET " + tc.path + " HTTP/1.1\r\nHost: h\r\n\r\n"
		for _, via := range []string{"net/http", "fast path"} {
			if resp, body := c.do(raw); resp.StatusCode != tc.code || !strings.Contains(body, tc.want) {
				t.Errorf("%s (%s): %d %q, want %d %q", tc.path, via, resp.StatusCode, body, tc.code, tc.want)
			}
		}
	}
}

// recordingQueue keeps what the gateway stores.
type recordingQueue struct {
	Queue
	calls []*queue.Call
}

func (q *recordingQueue) Enqueue(_ context.Context, c *queue.Call) error {
	q.calls = append(q.calls, c)
	return nil
}
func (q *recordingQueue) MaxBodyBytes() int64 { return 1 << 20 }

func TestAnAsynchronousCallIsNamedByThePathItStores(t *testing.T) {
	rt := supervisor.NewStaticRoute(spec("fn"), closedAddr(t))
	p := New(Options{Backends: routes{"fn": rt}, MaxBodyBytes: 1 << 20, HoldTimeout: time.Second})
	q := &recordingQueue{}
	p.ServeAsync(q)
	for path, want := range map[string]int{"/async-function/fn/a%2Fb": 202, "/async-function/fn%2Fx/y": 404} {
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, httptest.NewRequest("POST", path, strings.NewReader("job")))
		if rec.Code != want {
			t.Errorf("%s: %d %q, want %d", path, rec.Code, rec.Body, want)
		}
	}
	if len(q.calls) != 1 || q.calls[0].Function != "fn" || q.calls[0].Path != "/a%2Fb" {
		t.Fatalf("stored %+v", q.calls)
	}
}

func TestTheGatewaysOwnAnswerOutlivesAnEarlierCallsDeadline(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(echoReplica))
	defer upstream.Close()
	fn := &config.Function{Name: "fn", Timeout: 100 * time.Millisecond}
	srv := serve(t, New(Options{
		Backends:     routes{"fn": supervisor.NewStaticRoute(fn, strings.TrimPrefix(upstream.URL, "http://"))},
		MaxBodyBytes: 1 << 20, HoldTimeout: time.Second,
	}))
	// Three connections at once, so that the wait is paid once.
	var conns []*rawClient
	for range 3 {
		c := dialRaw(t, srv)
		c.do("GET /function/fn/ HTTP/1.1\r\nHost: h\r\n\r\n")
		c.do("GET /function/fn/ HTTP/1.1\r\nHost: h\r\n\r\n") // on the fast path
		conns = append(conns, c)
	}
	time.Sleep(answerGrace + 300*time.Millisecond) // past what those calls allowed for writing
	for i, tc := range []struct {
		raw  string
		code int
	}{
		{"GET /function/nope/ HTTP/1.1\r\nHost: h\r\n\r\n", http.StatusNotFound},
		{"GET /function%2Ffn/ HTTP/1.1\r\nHost: h\r\n\r\n", http.StatusNotFound},
		{"POST /function/fn/ HTTP/1.1\r\nHost: h\r\nContent-Length: 2000000\r\n\r\n", http.StatusRequestEntityTooLarge},
	} {
		if resp, _ := conns[i].do(tc.raw); resp.StatusCode != tc.code {
			t.Errorf("%q: %d", tc.raw, resp.StatusCode)
		}
	}
}
