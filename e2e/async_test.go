package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"faasd/api"
	"faasd/internal/testkit"
)

// callbacks is a callback receiver: a real HTTP server on loopback that keeps what it was
// sent, and can be told to fail the first few deliveries.
type callbacks struct {
	*httptest.Server
	mu       sync.Mutex
	got      []callback
	failNext int
}

type callback struct {
	header http.Header
	body   string
}

func newCallbacks(t *testing.T) *callbacks {
	return newCallbacksAt(t, "127.0.0.1:0")
}

// newCallbacksAt starts a callback receiver listening on addr.
func newCallbacksAt(t *testing.T, addr string) *callbacks {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := &callbacks{}
	c.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.failNext > 0 {
			c.failNext--
			http.Error(w, "not now", http.StatusServiceUnavailable)
			return
		}
		c.got = append(c.got, callback{r.Header.Clone(), string(body)})
	}))
	c.Listener.Close()
	c.Listener = ln
	c.Start()
	t.Cleanup(c.Close)
	return c
}

// wait returns the callback of a call once it arrived.
func (c *callbacks) wait(t *testing.T, callID string) callback {
	t.Helper()
	var found callback
	testkit.WaitFor(t, 30*time.Second, "the callback of call "+callID, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, cb := range c.got {
			if cb.header.Get("X-Call-Id") == callID {
				found = cb
				return true
			}
		}
		return false
	})
	return found
}

// async POSTs to /async-function/... and returns the answer's status, X-Call-Id and body.
func async(t *testing.T, d *testkit.Daemon, path, body string, header ...string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, d.URL+"/async-function/"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Call-Id"), string(b)
}

// raceFree fails the test if a daemon built with -race reported a data race.
func raceFree(t *testing.T, daemons ...*testkit.Daemon) {
	t.Cleanup(func() {
		for _, d := range daemons {
			d.Stop()
			if strings.Contains(d.Log(), "DATA RACE") {
				t.Errorf("the daemon reported a data race:\n%s", d.Log())
			}
		}
	})
}

func TestAsyncCallRunsAndCallsBack(t *testing.T) {
	d := testkit.StartDaemon(t, workload("echo", ""), testkit.Options{Auth: true})
	raceFree(t, d)
	cbs := newCallbacks(t)

	// The queue costs nothing until the first asynchronous call.
	var info api.Info
	if code, body := d.API("GET", "/system/info", ""); code != 200 || json.Unmarshal([]byte(body), &info) != nil || info.Queue == nil || info.Queue.State != "idle" {
		t.Fatalf("/system/info before any call: %d %s", code, body)
	}

	code, id, body := async(t, d, "echo/echo", "hello queue", "X-Callback-Url", cbs.URL+"/done", "Content-Type", "text/x-test")
	if code != http.StatusAccepted || id == "" {
		t.Fatalf("POST /async-function/echo/echo: %d %q %s", code, id, body)
	}
	cb := cbs.wait(t, id)
	if cb.body != "hello queue" {
		t.Errorf("callback body %q, want the function's answer", cb.body)
	}
	for k, want := range map[string]string{"X-Function-Status": "200", "X-Function-Name": "echo", "Content-Type": "application/octet-stream"} {
		if got := cb.header.Get(k); got != want {
			t.Errorf("callback %s = %q, want %q", k, got, want)
		}
	}
	if secs, err := strconv.ParseFloat(cb.header.Get("X-Duration-Seconds"), 64); err != nil || secs <= 0 || secs > 30 {
		t.Errorf("X-Duration-Seconds = %q", cb.header.Get("X-Duration-Seconds"))
	}

	t.Run("method, path, query, headers and the caller's call id reach the function", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPut, d.URL+"/async-function/echo.openfaas-fn/a%2Fb/c?x=1&y=2", nil)
		req.Header.Set("X-Call-Id", "caller-chosen-id")
		req.Header.Set("X-Custom", "kept")
		req.Header.Set("X-Callback-Url", cbs.URL)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted || resp.Header.Get("X-Call-Id") != "caller-chosen-id" {
			t.Fatalf("PUT: %d, X-Call-Id %q", resp.StatusCode, resp.Header.Get("X-Call-Id"))
		}
		var seen testkit.Info
		if err := json.Unmarshal([]byte(cbs.wait(t, "caller-chosen-id").body), &seen); err != nil {
			t.Fatal(err)
		}
		h := http.Header(seen.Headers)
		if seen.Path != "/a/b/c" || seen.RawPath != "/a%2Fb/c" || seen.Query != "x=1&y=2" || h.Get("X-Custom") != "kept" || h.Get("X-Call-Id") != "caller-chosen-id" {
			t.Errorf("the function saw path %q raw %q query %q headers %v", seen.Path, seen.RawPath, seen.Query, h)
		}
		if got := h.Get("X-Forwarded-For"); !strings.HasPrefix(got, "127.0.0.1") {
			t.Errorf("X-Forwarded-For = %q, want the original client", got)
		}
	})

	t.Run("bad calls are refused at once", func(t *testing.T) {
		for _, tc := range []struct {
			path, callback string
			code           int
		}{
			{"nope", "", 404},
			{"echo.other-ns/x", "", 404},
			{"echo", "not a url", 400},
			{"echo", "ftp://example.test/x", 400},
			// Where cloud metadata services answer, by any spelling.
			{"echo", "http://169.254.169.254/latest/meta-data/", 400},
			{"echo", "http://0xa9fea9fe/latest/meta-data/", 400},
			{"echo", "http://[fe80::1%25lo]/", 400},
		} {
			code, _, body := async(t, d, tc.path, "", "X-Callback-Url", tc.callback)
			if code != tc.code {
				t.Errorf("%s with callback %q: %d %s, want %d", tc.path, tc.callback, code, body, tc.code)
			}
		}
	})

	t.Run("the faasd CLI queues a call", func(t *testing.T) {
		c := newCLI(t, d)
		out := c.ok("from the cli", "invoke", "echo", "--async", "--callback", cbs.URL)
		if cb := cbs.wait(t, strings.TrimSpace(out)); !strings.Contains(cb.body, `"path":"/"`) {
			t.Errorf("callback of the CLI's call: %q", cb.body)
		}
		c.fail("--callback needs --async", "invoke", "echo", "--callback", cbs.URL)
	})

	testkit.WaitFor(t, 10*time.Second, "processed calls in /metrics", func() bool {
		return d.Metric("faasd_queue_processed_total", "echo") == 3 && d.Metric("faasd_queue_callbacks_delivered_total", "echo") == 3
	})
	if code, body := d.API("GET", "/system/info", ""); code != 200 || json.Unmarshal([]byte(body), &info) != nil || info.Queue.State != "running" || info.Queue.Engine != "nats-embedded" {
		t.Errorf("/system/info: %d %s", code, body)
	}
	if info.Provider.Provider == "" || info.Version.SHA == "" {
		t.Errorf("OpenFaaS's fields of /system/info are gone: %+v", info)
	}
}

func TestAsyncRetriesThenRecordsFailures(t *testing.T) {
	d := testkit.StartDaemon(t, workload("flaky", ""), testkit.Options{
		Gateway: "[queue]\nmax_attempts = 3\nretry_base = \"50ms\"\nretry_max = \"100ms\"",
	})
	raceFree(t, d)
	cbs := newCallbacks(t)

	t.Run("a callback that fails at first gets the result on a retry", func(t *testing.T) {
		cbs.mu.Lock()
		cbs.failNext = 2
		cbs.mu.Unlock()
		_, id, _ := async(t, d, "flaky/echo", "third time lucky", "X-Callback-Url", cbs.URL)
		if cb := cbs.wait(t, id); cb.body != "third time lucky" {
			t.Errorf("callback body %q", cb.body)
		}
		if n := metricWith(d, "faasd_queue_retried_total", "flaky", "callback"); n != 2 {
			t.Errorf("callback retries = %v, want 2", n)
		}
	})

	t.Run("a function that keeps failing is retried, then its failure is called back and recorded", func(t *testing.T) {
		_, id, _ := async(t, d, "flaky/status?code=503", "", "X-Callback-Url", cbs.URL)
		cb := cbs.wait(t, id)
		if cb.header.Get("X-Function-Status") != "503" {
			t.Errorf("X-Function-Status = %q, want the last answer, 503", cb.header.Get("X-Function-Status"))
		}
		if n := metricWith(d, "faasd_queue_retried_total", "flaky", "function"); n != 2 {
			t.Errorf("function retries = %v, want 2", n)
		}
		waitFailure(t, d, id, "function", 3)
	})

	t.Run("a callback that is down is retried, then recorded as failed", func(t *testing.T) {
		down := "http://" + testkit.FreeAddr(t) + "/gone"
		_, id, _ := async(t, d, "flaky/echo", "nobody listens", "X-Callback-Url", down)
		f := waitFailure(t, d, id, "callback", 3)
		if f.CallbackURL != down || !strings.Contains(f.Error, "connection refused") {
			t.Errorf("failure: %+v", f)
		}
		if n := metricWith(d, "faasd_queue_failed_total", "flaky", "callback"); n != 1 {
			t.Errorf("failed callbacks = %v, want 1", n)
		}
		if !strings.Contains(d.Log(), "queue: callback failed") {
			t.Errorf("no log line for the failed callback")
		}
	})
}

func TestAsyncCallbacksGoOnlyWhereAllowed(t *testing.T) {
	// The receiver listens on 127.0.0.2, the one address the list names: the gateway's own
	// 127.0.0.1, and localhost with it, are then refused.
	cbs := newCallbacksAt(t, "127.0.0.2:0")
	_, port, _ := net.SplitHostPort(cbs.Listener.Addr().String())
	d := testkit.StartDaemon(t, workload("flaky", ""), testkit.Options{
		Gateway: "[queue]\ncallback_allow = [\"127.0.0.2\"]\nmax_attempts = 3\nretry_base = \"50ms\"\nretry_max = \"100ms\"",
	})
	raceFree(t, d)

	t.Run("a callback to an address the list does not name is refused at once", func(t *testing.T) {
		for url, want := range map[string]string{
			"http://169.254.169.254/latest/meta-data/": "169.254.169.254 is link-local",
			"http://127.0.0.1:" + port + "/":           "127.0.0.1 is not in [queue] callback_allow",
		} {
			if code, _, body := async(t, d, "flaky/echo", "", "X-Callback-Url", url); code != http.StatusBadRequest || !strings.Contains(body, want) {
				t.Errorf("callback %s: %d %q, want 400 saying %q", url, code, body, want)
			}
		}
		// Nothing was stored: the queue has not even started.
		var info api.Info
		if code, body := d.API("GET", "/system/info", ""); code != 200 || json.Unmarshal([]byte(body), &info) != nil || info.Queue.State != "idle" {
			t.Errorf("/system/info after refused calls: %d %s", code, body)
		}
	})

	t.Run("a callback to an address the list names arrives", func(t *testing.T) {
		_, id, _ := async(t, d, "flaky/echo", "allowed", "X-Callback-Url", cbs.URL+"/done")
		if cb := cbs.wait(t, id); cb.body != "allowed" {
			t.Errorf("callback body %q", cb.body)
		}
	})

	t.Run("a name that resolves to a refused address fails once, for good", func(t *testing.T) {
		url := "http://localhost:" + port + "/done"
		code, id, body := async(t, d, "flaky/echo", "", "X-Callback-Url", url)
		if code != http.StatusAccepted {
			t.Fatalf("callback %s: %d %s, want 202: the name is checked where it resolves", url, code, body)
		}
		if f := waitFailure(t, d, id, "callback", 1); !strings.Contains(f.Error, "callback refused: localhost resolves to") {
			t.Errorf("failure: %+v", f)
		}
		if n := metricWith(d, "faasd_queue_failed_total", "flaky", "callback"); n != 1 {
			t.Errorf("failed callbacks = %v, want 1", n)
		}
		if n := metricWith(d, "faasd_queue_retried_total", "flaky", "callback"); n > 0 { // -1: never counted
			t.Errorf("callback retries = %v, want none", n)
		}
		if !strings.Contains(d.Log(), "queue: callback failed") {
			t.Errorf("no log line for the refused callback")
		}
		cbs.mu.Lock()
		defer cbs.mu.Unlock()
		if len(cbs.got) != 1 {
			t.Errorf("the receiver got %d callbacks, want only the allowed one", len(cbs.got))
		}
	})
}

// waitFailure waits for a call in GET /system/queue/failed and checks its stage and tries.
func waitFailure(t *testing.T, d *testkit.Daemon, callID, stage string, attempts int) api.QueueFailure {
	t.Helper()
	var found api.QueueFailure
	testkit.WaitFor(t, 20*time.Second, "call "+callID+" in /system/queue/failed", func() bool {
		code, body := d.API("GET", "/system/queue/failed?function=flaky", "")
		var list []api.QueueFailure
		if code != 200 || json.Unmarshal([]byte(body), &list) != nil {
			t.Fatalf("/system/queue/failed: %d %s", code, body)
		}
		for _, f := range list {
			if f.CallID == callID {
				found = f
				return true
			}
		}
		return false
	})
	if found.Stage != stage || found.Attempts != attempts || found.Function != "flaky" {
		t.Errorf("failure of %s: %+v, want stage %s after %d attempts", callID, found, stage, attempts)
	}
	return found
}

func metricWith(d *testkit.Daemon, name, fn, stage string) float64 {
	return d.MetricWith(name, "function_name", fn+".openfaas-fn", "stage", stage)
}

func TestAsyncQueueFullAnswers429(t *testing.T) {
	// One call at a time, each for a while: the calls stay in the queue until they ran.
	d := testkit.StartDaemon(t, workload("slow", `labels = { "com.openfaas.queue.max-inflight" = "1" }`), testkit.Options{
		Gateway: "[queue]\nmax_messages = 3\nmax_bytes = 102400\nmax_body_bytes = 61440",
	})
	raceFree(t, d)
	big := strings.Repeat("x", 60<<10)
	for i, tc := range []struct {
		body string
		code int
	}{
		{"", 202},                          // runs, and stays stored while it does
		{big, 202},                         // about 60 KiB of the 100 KiB
		{big, 429},                         // would pass max_bytes
		{strings.Repeat("x", 61<<10), 413}, // over max_body_bytes
		{"", 202},                          // the third call
		{"", 429},                          // a fourth: max_messages
	} {
		code, _, body := async(t, d, "slow/sleep?d=3s", tc.body)
		if code != tc.code {
			t.Errorf("call %d (%d bytes): %d %s, want %d", i, len(tc.body), code, body, tc.code)
		}
	}
}

func TestAsyncCallsSurviveSIGKILL(t *testing.T) {
	records := filepath.Join(testkit.Dir(t), "runs")
	if err := os.Mkdir(records, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(records, 0o777); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(records, "calls")
	d := testkit.StartDaemon(t, workload("job", fmt.Sprintf(`env = { RECORD_FILE = %q }
labels = { "com.openfaas.queue.max-inflight" = "4" }`, file)), testkit.Options{
		// A call taken by the killed daemon runs again this soon after the restart.
		Gateway: "[queue]\nack_wait = \"2s\"",
	})
	raceFree(t, d)
	pidsServing(t, d, "job", 1)

	const n = 100
	ids := make(chan string, n)
	var wg sync.WaitGroup
	for w := range 10 {
		wg.Go(func() {
			for i := range n / 10 {
				code, id, body := async(t, d, "job/record?d=200ms", fmt.Sprintf("job %d-%d", w, i))
				if code != http.StatusAccepted {
					t.Errorf("call %d-%d: %d %s", w, i, code, body)
				}
				ids <- id
			}
		})
	}
	wg.Wait()
	close(ids)
	// Killed mid-run: some calls done, some running, most waiting.
	testkit.WaitFor(t, 30*time.Second, "a few calls to run", func() bool { return len(recorded(t, file)) >= 8 })
	d.Signal(syscall.SIGKILL)
	d.Wait(10 * time.Second)
	ranBefore := len(recorded(t, file))
	if ranBefore >= n {
		t.Fatalf("all %d calls ran before the kill; the test proves nothing", n)
	}

	d.Start()
	want := map[string]bool{}
	for id := range ids {
		want[id] = true
	}
	testkit.WaitFor(t, 60*time.Second, fmt.Sprintf("all %d accepted calls to run", n), func() bool {
		for _, id := range recorded(t, file) {
			delete(want, id)
		}
		return len(want) == 0
	})
	runs := recorded(t, file)
	distinct := map[string]bool{}
	for _, id := range runs {
		distinct[id] = true
	}
	t.Logf("%d calls accepted, %d ran before SIGKILL, %d runs in all: %d duplicates (at least once)", n, ranBefore, len(runs), len(runs)-len(distinct))
	testkit.WaitFor(t, 10*time.Second, "an empty queue", func() bool {
		return d.Metric("faasd_queue_depth", "job") == 0
	})
}

// recorded lists the call ids the job function finished, one per run.
func recorded(t *testing.T, file string) []string {
	b, err := os.ReadFile(file)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

func TestAsyncHostsShareOneQueue(t *testing.T) {
	records := filepath.Join(testkit.Dir(t), "runs")
	if err := os.Mkdir(records, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(records, 0o777)
	file := filepath.Join(records, "calls")
	fn := workload("job", fmt.Sprintf(`env = { RECORD_FILE = %q }
labels = { "com.openfaas.queue.max-inflight" = "2" }`, file))
	// One daemon's embedded server takes NATS clients; the other uses it as its queue.
	natsAddr := testkit.FreeAddr(t)
	a := testkit.StartDaemon(t, fn, testkit.Options{Gateway: fmt.Sprintf("[queue]\nlisten = %q", natsAddr)})
	testkit.WaitFor(t, 20*time.Second, "the embedded queue listening", func() bool {
		var info api.Info
		_, body := a.API("GET", "/system/info", "")
		return json.Unmarshal([]byte(body), &info) == nil && info.Queue != nil && info.Queue.State == "running"
	})
	b := testkit.StartDaemon(t, fn, testkit.Options{Gateway: fmt.Sprintf("[queue]\nurl = \"nats://%s\"", natsAddr)})
	raceFree(t, b, a)

	const n = 20
	for i := range n {
		for _, d := range []*testkit.Daemon{a, b} {
			if code, _, body := async(t, d, "job/record?d=50ms", strconv.Itoa(i)); code != http.StatusAccepted {
				t.Fatalf("call %d: %d %s", i, code, body)
			}
		}
	}
	testkit.WaitFor(t, 60*time.Second, fmt.Sprintf("%d calls to run", 2*n), func() bool {
		distinct := map[string]bool{}
		for _, id := range recorded(t, file) {
			distinct[id] = true
		}
		return len(distinct) == 2*n
	})
	var ranA, ranB float64
	testkit.WaitFor(t, 10*time.Second, "both hosts' counts", func() bool {
		ranA, ranB = a.Metric("faasd_queue_processed_total", "job"), b.Metric("faasd_queue_processed_total", "job")
		return max(ranA, 0)+max(ranB, 0) >= 2*n
	})
	t.Logf("calls run: %v by the host with the embedded server, %v by the other", ranA, ranB)
	var info api.Info
	if _, body := b.API("GET", "/system/info", ""); json.Unmarshal([]byte(body), &info) != nil || info.Queue.Engine != "nats" {
		t.Errorf("the second host's /system/info: %s", body)
	}
}
