package proxy

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"faasd/internal/testkit"
	"faasd/supervisor"
)

// crashLoop is how the supervisor describes a function whose replicas keep exiting.
func crashLoop(retryIn time.Duration) *supervisor.Failing {
	now := time.Now()
	return &supervisor.Failing{Since: now.Add(-5 * time.Second), Failures: 4, LastError: "process exited: exit status 1: boom", RetryAt: now.Add(retryIn)}
}

// checkFailingAnswer checks the answer to a call of a failing function with no replica.
func checkFailingAnswer(t *testing.T, how string, resp *http.Response, body string, retryAfter string) {
	t.Helper()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != retryAfter ||
		!strings.HasPrefix(body, "function fn: failing, no replica is ready: process exited: exit status 1: boom (4 failures in a row over 5") ||
		resp.Header.Get("X-Call-Id") == "" {
		t.Errorf("%s: %d Retry-After %q %q, want 503 with Retry-After %s naming the function and the last error",
			how, resp.StatusCode, resp.Header.Get("Retry-After"), body, retryAfter)
	}
}

func invocations(t *testing.T, srv *httptest.Server, code string) float64 {
	t.Helper()
	var buf bytes.Buffer
	srv.Config.Handler.(*Proxy).Metrics().WritePrometheus(&buf)
	m, err := testkit.ReadMetrics(&buf)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := m.Value("gateway_function_invocation_total", "function_name", "fn.openfaas-fn", "code", code)
	return v
}

func TestFailingFunctionWithoutAReplicaIsAnsweredAtOnce(t *testing.T) {
	rt := supervisor.NewStaticRoute(spec("fn"))
	rt.SetFailing(crashLoop(2500 * time.Millisecond))
	// Held, a call would wait a minute and the client give up long before.
	srv := newProxy(t, routes{"fn": rt}, time.Minute, 0)
	// The calls a connection's first call hands to the gateway's own loop, and one that
	// net/http serves, get the same answer.
	fast := dialRaw(t, srv)
	for i := range 2 {
		resp, body := fast.do("POST /function/fn HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
		checkFailingAnswer(t, "taken over, call "+string(rune('1'+i)), resp, body, "3")
	}
	resp, body := dialRaw(t, srv).do("GET /function/fn/path HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	checkFailingAnswer(t, "net/http", resp, body, "3")

	// Metrics count them; the scaler does not see them as load.
	if n := invocations(t, srv, "503"); n != 3 {
		t.Errorf("gateway_function_invocation_total code 503 = %v, want 3", n)
	}
	if s := statsOf(srv); s.Requests != 0 || s.InFlight != 0 || s.Held != 0 {
		t.Errorf("stats %+v: calls turned away count as load", s)
	}
}

func TestHeldCallsAreAnsweredWhenTheFunctionTurnsFailing(t *testing.T) {
	rt := supervisor.NewStaticRoute(spec("fn"))
	srv := newProxy(t, routes{"fn": rt}, time.Minute, 0)
	type answer struct {
		how  string
		resp *http.Response
		body string
	}
	answers := make(chan answer, 3)
	var wg sync.WaitGroup
	for _, c := range []struct{ how, raw string }{
		{"taken over", "GET /function/fn HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"taken over, with a body", "POST /function/fn HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"},
		{"net/http", "GET /function/fn HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"},
	} {
		c := c
		client := dialRaw(t, srv)
		wg.Go(func() {
			resp, body := client.do(c.raw)
			answers <- answer{c.how, resp, body}
		})
	}
	waitUntil(t, func() bool { return statsOf(srv).Held == 3 })
	rt.SetFailing(crashLoop(0))
	wg.Wait()
	close(answers)
	for a := range answers {
		checkFailingAnswer(t, a.how, a.resp, a.body, "1")
	}
	// They asked for a replica: load, unlike calls turned away.
	if s := statsOf(srv); s.Requests != 3 || s.InFlight != 0 || s.Held != 0 {
		t.Errorf("stats %+v", s)
	}
	if n := invocations(t, srv, "503"); n != 3 {
		t.Errorf("gateway_function_invocation_total code 503 = %v, want 3", n)
	}
}

func TestFailingFunctionServesFromTheReplicasItHas(t *testing.T) {
	live := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "old spec") }))
	defer live.Close()
	// A broken new spec rolls over while a replica of the old one serves.
	rt := supervisor.NewStaticRoute(spec("fn"), strings.TrimPrefix(live.URL, "http://"))
	rt.SetFailing(crashLoop(time.Second))
	srv := newProxy(t, routes{"fn": rt}, time.Minute, 0)
	if resp, body := get(t, srv.URL+"/function/fn"); resp.StatusCode != 200 || body != "old spec" {
		t.Fatalf("with a replica ready: %d %q", resp.StatusCode, body)
	}
	// The last replica goes: calls are turned away, until one is ready again.
	rt.SetEndpoints()
	if resp, body := get(t, srv.URL+"/function/fn"); resp.StatusCode != 503 || !strings.Contains(body, "boom") {
		t.Fatalf("with no replica: %d %q", resp.StatusCode, body)
	}
	rt.SetFailing(nil)
	rt.SetEndpoints(strings.TrimPrefix(live.URL, "http://"))
	if resp, body := get(t, srv.URL+"/function/fn"); resp.StatusCode != 200 || body != "old spec" {
		t.Fatalf("recovered: %d %q", resp.StatusCode, body)
	}
}

func TestRetryAfterIsTheWholeSecondsUntilTheNextStart(t *testing.T) {
	for _, c := range []struct {
		retryIn time.Duration
		want    string
	}{
		{-time.Second, "1"}, // starting now
		{0, "1"},
		{100 * time.Millisecond, "1"},
		{2500 * time.Millisecond, "3"},
		{30 * time.Second, "30"},
	} {
		e := &failingError{crashLoop(c.retryIn)}
		if got := e.retryAfter(); got != c.want {
			t.Errorf("next start in %s: Retry-After %s, want %s", c.retryIn, got, c.want)
		}
		if next := strings.Contains(e.Error(), "a replica is starting now"); next != (c.retryIn <= 0) {
			t.Errorf("next start in %s: %q", c.retryIn, e.Error())
		}
	}
}
