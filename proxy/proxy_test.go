package proxy

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"faasd/config"
	"faasd/supervisor"
)

// routes is a Backends over static routes.
type routes map[string]*supervisor.Route

func (r routes) Route(name string) (*supervisor.Route, bool)   { rt, ok := r[name]; return rt, ok }
func (r routes) RouteForHost(string) (*supervisor.Route, bool) { return nil, false }

func spec(name string) *config.Function {
	return &config.Function{Name: name, Timeout: 5 * time.Second}
}

// closedAddr is a loopback address that refuses connections.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func newProxy(t *testing.T, rs routes, hold time.Duration, maxHeld int) *httptest.Server {
	return serve(t, New(Options{
		Backends: rs, MaxBodyBytes: 1 << 20, HoldTimeout: hold, MaxHeld: maxHeld,
		ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, ReadHeaderTimeout: 10 * time.Second,
		MaxConnsPerClient: 1000,
	}))
}

// serve runs p as the daemon does: on its Server, behind its Listener.
func serve(t *testing.T, p *Proxy) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	srv.Config = p.Server()
	srv.Listener = p.Listener(srv.Listener)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func TestRefusedConnectionIsRetriedOnAnotherReplica(t *testing.T) {
	var served atomic.Int64
	live := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		body, _ := io.ReadAll(r.Body)
		w.Write(body)
	}))
	defer live.Close()
	rt := supervisor.NewStaticRoute(spec("fn"), closedAddr(t), strings.TrimPrefix(live.URL, "http://"))
	srv := newProxy(t, routes{"fn": rt}, time.Second, 0)
	for i := range 10 {
		// A body too: it must reach the second replica whole after the refused first try.
		resp, err := http.Post(srv.URL+"/function/fn", "text/plain", strings.NewReader("payload"))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "payload" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
	if served.Load() != 10 {
		t.Fatalf("live replica served %d, want 10", served.Load())
	}
}

// A replica killed a moment ago closed the connections the gateway keeps to it: a request
// that cannot be sent again must not go out over one of them and be lost.
func TestPostIsNotLostOnTheConnectionOfAReplicaThatJustDied(t *testing.T) {
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(w, r.Body) })
	dying, live := httptest.NewServer(echo), httptest.NewServer(echo)
	defer live.Close()
	rt := supervisor.NewStaticRoute(spec("fn"), strings.TrimPrefix(dying.URL, "http://"), strings.TrimPrefix(live.URL, "http://"))
	srv := newProxy(t, routes{"fn": rt}, time.Second, 0)
	post := func() (int, string) {
		resp, err := http.Post(srv.URL+"/function/fn", "text/plain", strings.NewReader("payload"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	for range 10 { // both replicas have an idle connection now
		post()
	}
	dying.CloseClientConnections()
	dying.Close()
	for i := range 10 {
		if code, body := post(); code != 200 || body != "payload" {
			t.Fatalf("POST %d after a replica died: %d %q", i, code, body)
		}
	}
}

func TestResponseCutShortIsNotRetried(t *testing.T) {
	var calls atomic.Int64
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		conn, _, _ := http.NewResponseController(w).Hijack()
		conn.Close()
	}))
	defer broken.Close()
	rt := supervisor.NewStaticRoute(spec("fn"), strings.TrimPrefix(broken.URL, "http://"))
	srv := newProxy(t, routes{"fn": rt}, time.Second, 0)
	resp, _ := get(t, srv.URL+"/function/fn")
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", resp.StatusCode)
	}
	if calls.Load() != 1 {
		t.Fatalf("the replica was called %d times; a request it may have acted on must not be retried", calls.Load())
	}
}

func TestHeldRequestIsReleasedWhenAReplicaIsReady(t *testing.T) {
	live := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "awake") }))
	defer live.Close()
	rt := supervisor.NewStaticRoute(spec("fn"))
	srv := newProxy(t, routes{"fn": rt}, 10*time.Second, 0)
	done := make(chan *http.Response)
	go func() {
		resp, _ := http.Get(srv.URL + "/function/fn")
		done <- resp
	}()
	// The hold counts as held; publish a replica once the request is waiting.
	deadline := time.Now().Add(5 * time.Second)
	for ; time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if stats := statsOf(srv); stats.Held == 1 {
			break
		}
	}
	rt.SetEndpoints(strings.TrimPrefix(live.URL, "http://"))
	resp := <-done
	if resp == nil || resp.StatusCode != 200 {
		t.Fatalf("held request: %v", resp)
	}
	resp.Body.Close()
	if resp.Header.Get("X-Faasd-Cold-Start") == "" {
		t.Error("no X-Faasd-Cold-Start on a held request")
	}
}

// statsOf digs the proxy out of a test server.
func statsOf(srv *httptest.Server) Stats { return srv.Config.Handler.(*Proxy).Stats("fn") }

func TestHoldIsBoundedInTimeAndCount(t *testing.T) {
	rt := supervisor.NewStaticRoute(spec("fn"))
	srv := newProxy(t, routes{"fn": rt}, 2*time.Second, 1)
	var wg sync.WaitGroup
	codes := make(chan int, 2)
	for range 2 {
		wg.Go(func() {
			resp, body := get(t, srv.URL+"/function/fn")
			if resp.StatusCode == 503 && !strings.Contains(body, "no replica became ready") {
				t.Errorf("503 body %q", body)
			}
			codes <- resp.StatusCode
		})
	}
	wg.Wait()
	close(codes)
	got := map[int]int{}
	for c := range codes {
		got[c]++
	}
	if got[503] != 1 || got[429] != 1 {
		t.Fatalf("codes %v, want one 503 (timeout) and one 429 (cap of 1)", got)
	}
	if s := statsOf(srv); s.Held != 0 || s.InFlight != 0 {
		t.Fatalf("after the requests: %+v", s)
	}
}

func TestClientThatLeavesStopsWaiting(t *testing.T) {
	rt := supervisor.NewStaticRoute(spec("fn"))
	srv := newProxy(t, routes{"fn": rt}, time.Minute, 0)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/function/fn", nil)
	errc := make(chan error)
	go func() {
		_, err := http.DefaultClient.Do(req)
		errc <- err
	}()
	waitUntil(t, func() bool { return statsOf(srv).Held == 1 })
	cancel()
	<-errc
	waitUntil(t, func() bool { s := statsOf(srv); return s.Held == 0 && s.InFlight == 0 })
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestBalancerPrefersLeastInFlight(t *testing.T) {
	rt := supervisor.NewStaticRoute(spec("fn"), "a:1", "b:1", "c:1")
	eps, _ := rt.Endpoints()
	eps[0].Acquire()
	eps[0].Acquire()
	eps[2].Acquire()
	var b balancer
	for range 10 {
		if got := b.pick(eps, nil); got != eps[1] {
			t.Fatalf("picked %s, want b (no requests in flight)", got.Addr)
		}
	}
	if got := b.pick(eps, eps[1:2]); got != eps[2] {
		t.Fatalf("with b excluded picked %s, want c", got.Addr)
	}
	if got := b.pick(eps, eps); got != nil {
		t.Fatalf("all excluded picked %v", got)
	}
}

func TestCallIDsAreUUIDs(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id, start := callStamp("", time.Unix(0, 1795948752999788282))
		if start != "1795948752999788282" {
			t.Fatalf("start %q", start)
		}
		if len(id) != 36 || id[14] != '4' || seen[id] {
			t.Fatalf("bad or repeated id %q", id)
		}
		seen[id] = true
	}
}
