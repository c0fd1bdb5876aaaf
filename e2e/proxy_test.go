package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"faasd/internal/testkit"
)

func TestProxyPassesPathQueryAndHeaders(t *testing.T) {
	d := testkit.StartDaemon(t, workload("echo", ""))
	pidsServing(t, d, "echo", 1)
	for _, tc := range []struct {
		url, path, rawPath, query string
	}{
		{"/function/echo", "/", "", ""},
		{"/function/echo/", "/", "", ""},
		{"/function/echo.openfaas-fn/a/b", "/a/b", "", ""},
		{"/function/echo/a/b/?x=1&y=%20z", "/a/b/", "", "x=1&y=%20z"},
		{"/function/echo/files/a%2Fb", "/files/a/b", "/files/a%2Fb", ""},
		{"/function/%65cho/x", "/x", "", ""},
	} {
		req, _ := http.NewRequest("GET", d.URL+tc.url, nil)
		req.Header.Set("X-Custom", "kept")
		req.Header.Set("X-Forwarded-For", "203.0.113.9")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var info testkit.Info
		decodeJSON(t, resp, &info)
		if info.Path != tc.path || info.RawPath != tc.rawPath || info.Query != tc.query {
			t.Errorf("%s reached the function as path %q raw %q query %q; want %q %q %q", tc.url, info.Path, info.RawPath, info.Query, tc.path, tc.rawPath, tc.query)
		}
		h := http.Header(info.Headers)
		if h.Get("X-Custom") != "kept" {
			t.Errorf("X-Custom not passed: %v", h)
		}
		// The client is no trusted proxy: what it says of itself is replaced.
		if got := h.Get("X-Forwarded-For"); got != "127.0.0.1" {
			t.Errorf("X-Forwarded-For = %q, want the client's address alone", got)
		}
		if want := "/function/" + strings.SplitN(strings.TrimPrefix(tc.url, "/function/"), "/", 2)[0]; h.Get("X-Forwarded-Prefix") != want {
			t.Errorf("X-Forwarded-Prefix = %q, want %q", h.Get("X-Forwarded-Prefix"), want)
		}
		if h.Get("X-Forwarded-Host") == "" || h.Get("X-Forwarded-Proto") != "http" {
			t.Errorf("X-Forwarded-Host/Proto missing: %v", h)
		}
		if h.Get("X-Call-Id") == "" || resp.Header.Get("X-Call-Id") != h.Get("X-Call-Id") {
			t.Errorf("X-Call-Id upstream %q, response %q", h.Get("X-Call-Id"), resp.Header.Get("X-Call-Id"))
		}
		if resp.Header.Get("X-Start-Time") == "" || len(resp.Header.Values("X-Call-Id")) != 1 {
			t.Errorf("response headers: %v", resp.Header)
		}
	}
}

func TestProxyAnswersForTheGateway(t *testing.T) {
	d := testkit.StartDaemon(t, workload("fn", `hosts = ["api.example.test"]`), testkit.Options{Gateway: "max_body_bytes = 1024"})
	pidsServing(t, d, "fn", 1)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	t.Run("unknown function is 404 with a message", func(t *testing.T) {
		for _, path := range []string{"/function/nope", "/function/nope/x", "/function/.openfaas-fn", "/function/fn.other-ns/", "/function/..%2Ffn"} {
			resp, err := client.Get(d.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 404 || !strings.Contains(string(body), "error finding function") {
				t.Errorf("%s: %d %q", path, resp.StatusCode, body)
			}
			if resp.Header.Get("X-Call-Id") == "" {
				t.Errorf("%s: no X-Call-Id on the 404", path)
			}
		}
	})
	t.Run("redirects pass through", func(t *testing.T) {
		resp, err := client.Get(d.URL + "/function/fn/redirect")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 302 || resp.Header.Get("Location") != "/elsewhere" {
			t.Errorf("got %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
	t.Run("bodies over the limit get 413", func(t *testing.T) {
		resp, err := client.Post(d.URL+"/function/fn/echo", "text/plain", strings.NewReader(strings.Repeat("x", 2048)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 413 {
			t.Errorf("Content-Length over limit: %d", resp.StatusCode)
		}
		// Chunked, so the size is only known while streaming.
		resp, err = client.Post(d.URL+"/function/fn/echo", "text/plain", io.MultiReader(strings.NewReader(strings.Repeat("x", 2048))))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 413 {
			t.Errorf("chunked over limit: %d", resp.StatusCode)
		}
		resp, err = client.Post(d.URL+"/function/fn/echo", "text/plain", strings.NewReader("small"))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "small" {
			t.Errorf("echo: %d %q", resp.StatusCode, body)
		}
	})
	t.Run("a function's host name reaches it at the root", func(t *testing.T) {
		req, _ := http.NewRequest("GET", d.URL+"/some/path?q=1", nil)
		req.Host = "API.example.test:8080"
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var info testkit.Info
		decodeJSON(t, resp, &info)
		if info.Path != "/some/path" || info.Query != "q=1" {
			t.Errorf("host route reached %q %q", info.Path, info.Query)
		}
	})
	t.Run("methods other than the usual get 405", func(t *testing.T) {
		req, _ := http.NewRequest("TRACE", d.URL+"/function/fn/", nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 405 {
			t.Errorf("TRACE: %d", resp.StatusCode)
		}
	})
	t.Run("healthz", func(t *testing.T) {
		if code, _ := testkit.Get(t, d.URL+"/healthz"); code != 200 {
			t.Errorf("healthz: %d", code)
		}
	})
}

func TestProxyStreamsServerSentEvents(t *testing.T) {
	d := testkit.StartDaemon(t, workload("sse", ""))
	pidsServing(t, d, "sse", 1)
	resp, err := http.Get(d.URL + "/function/sse/sse")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(resp.Body).ReadString('\n')
		first <- line
	}()
	// The workload holds the second event back for seconds; the first must arrive on
	// its own, so a buffering proxy fails here.
	select {
	case line := <-first:
		if line != "data: first\n" {
			t.Fatalf("first line %q", line)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the first event was not flushed through the proxy")
	}
}

func TestProxyPassesWebSocketUpgrades(t *testing.T) {
	d := testkit.StartDaemon(t, workload("ws", ""))
	pidsServing(t, d, "ws", 1)
	conn, err := net.Dial("tcp", strings.TrimPrefix(d.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET /function/ws/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for _, msg := range []string{"ping", "pong and more"} {
		io.WriteString(conn, msg)
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(br, buf); err != nil || string(buf) != msg {
			t.Fatalf("echo %q: %q %v", msg, buf, err)
		}
	}
}

func TestRequestsWaitForReplicasThatAreStarting(t *testing.T) {
	d := testkit.StartDaemon(t, workload("slowstart", `env = { READY_DELAY = "700ms" }`))
	// Right after the daemon came up the replica is still starting: the request is held
	// until it is ready instead of failing.
	info, err := d.GetInfo("slowstart")
	if err != nil {
		t.Fatalf("request during start-up: %v", err)
	}
	if info.PID == 0 {
		t.Fatal("no pid")
	}
}

func TestFunctionTimeoutBoundsTheRequest(t *testing.T) {
	d := testkit.StartDaemon(t, workload("slow", `timeout = "300ms"`))
	pidsServing(t, d, "slow", 1)
	code, body := testkit.Get(t, d.URL+"/function/slow/sleep?d=5s")
	if code != http.StatusGatewayTimeout || !strings.Contains(body, "timeout of 300ms") {
		t.Fatalf("got %d %q, want 504 naming the timeout", code, body)
	}
	if code, _ := testkit.Get(t, d.URL+"/function/slow/sleep?d=10ms"); code != 200 {
		t.Fatalf("short request: %d", code)
	}
}

func TestLoadIsSpreadOverReplicas(t *testing.T) {
	d := testkit.StartDaemon(t, workload("wide", `labels = { "com.openfaas.scale.min" = "3" }`))
	pidsServing(t, d, "wide", 3)
	// Three slow requests at once land on three different replicas: least in flight.
	var mu sync.Mutex
	seen := map[string]bool{}
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			_, body := testkit.Get(t, d.URL+"/function/wide/sleep?d=300ms")
			mu.Lock()
			seen[body] = true
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(seen) != 3 {
		t.Fatalf("3 concurrent requests went to %d replicas: %v", len(seen), seen)
	}
}

// A function whose replicas keep failing is answered at once with why, instead of holding
// callers for scale_from_zero_timeout; the requests already held are answered when it
// turns failing; its 503s are no load for the scaler; fixed, it serves again.
func TestFailingFunctionIsAnsweredAtOnceAndRecovers(t *testing.T) {
	app, m := testkit.Dir(t), marker(t)
	program := func(script string) {
		tmp := filepath.Join(app, "server.new")
		if err := os.WriteFile(tmp, []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(app, "server")); err != nil {
			t.Fatal(err)
		}
	}
	workload := filepath.Join(testkit.Bin(t), "workload")
	program("NO_LOCK=1 exec " + workload) // starts and is never ready
	d := testkit.StartDaemon(t, fmt.Sprintf(`[functions.flaky]
workdir = %q
command = ["./server"]
env = { MARKER = %q }
readiness_timeout = "2m"
labels = { "com.openfaas.scale.max" = "4" }
`, app, m), testkit.Options{Gateway: `scale_from_zero_timeout = "2m"
scale_down_window = "3s"`})
	// Held or not, a caller that waited for the hold to time out would give up first.
	client := &http.Client{Timeout: 30 * time.Second}
	call := func() (*http.Response, string, error) {
		resp, err := client.Get(d.URL + "/function/flaky/")
		if err != nil {
			return nil, "", err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body), nil
	}
	failingAnswer := func(lastError string) {
		t.Helper()
		resp, body, err := call()
		if err != nil {
			t.Error(err)
			return
		}
		retry, err := strconv.Atoi(resp.Header.Get("Retry-After"))
		if resp.StatusCode != http.StatusServiceUnavailable || err != nil || retry < 1 || retry > 30 ||
			!strings.HasPrefix(body, "function flaky: failing, no replica is ready: ") || !strings.Contains(body, lastError) {
			t.Errorf("%d Retry-After %q %q, want 503 with a Retry-After and %q", resp.StatusCode, resp.Header.Get("Retry-After"), body, lastError)
		}
	}

	// Three calls wait while the replica starts, which it never finishes: it is killed.
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() { failingAnswer("process exited: signal: killed") })
	}
	testkit.WaitFor(t, 20*time.Second, "3 calls held", func() bool { return d.Metric("faasd_requests_held", "flaky") == 3 })
	program(`echo "cannot read /etc/flaky.conf" >&2; exit 2`) // from now on, a crash loop
	for _, pid := range testkit.ProcessesWith(m) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	wg.Wait()

	// Crash-looping, it answers a new call at once with the reason.
	testkit.WaitFor(t, 20*time.Second, "the crash loop's reason", func() bool {
		lastError, _ := getStatus(t, d, "flaky").raw["lastError"].(string)
		return strings.Contains(lastError, "cannot read /etc/flaky.conf")
	})
	failingAnswer("process exited: exit status 2: cannot read /etc/flaky.conf")

	// 25 calls a second would ask for 4 replicas of a function that serves them; turned
	// away, they ask for none.
	load := testkit.StartLoad(d.URL+"/function/flaky/", 25, 5)
	holdsAt(t, d, "flaky", 1, 4)
	load.Stop()
	if load.OK.Load() != 0 || load.Failed.Load() < 50 {
		t.Errorf("under load: %d answered 200, %d not", load.OK.Load(), load.Failed.Load())
	}
	if n := d.MetricWith("gateway_function_invocation_total", "function_name", "flaky.openfaas-fn", "code", "503"); n < 54 {
		t.Errorf("gateway_function_invocation_total code 503 = %v, want every call turned away", n)
	}

	// Fixed, the next try starts it, and it serves.
	program("exec " + workload)
	testkit.WaitFor(t, 40*time.Second, "flaky answering 200 once fixed", func() bool {
		resp, _, err := call()
		return err == nil && resp.StatusCode == 200
	})
	if st := getStatus(t, d, "flaky"); st.raw["status"] != "ready" || st.AvailableReplicas != 1 {
		t.Errorf("recovered: %+v", st.raw)
	}
}
