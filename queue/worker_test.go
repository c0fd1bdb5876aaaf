package queue

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/nats-io/nats.go/jetstream"

	"faasd/api"
)

func TestRetryBacksOffExponentiallyOnRetryableAnswersOnly(t *testing.T) {
	r := Retry{MaxAttempts: 6, Base: time.Second, Max: 5 * time.Second}
	for _, tc := range []struct {
		attempt, status int
		again           bool
		delay           time.Duration
	}{
		{1, 503, true, time.Second},
		{2, 503, true, 2 * time.Second},
		{3, 500, true, 4 * time.Second},
		{4, 429, true, 5 * time.Second}, // 8s, capped
		{5, 0, true, 5 * time.Second},   // no answer at all
		{6, 503, false, 0},              // the last attempt
		{1, 200, false, 0},
		{1, 404, false, 0},
		{1, 400, false, 0},
		{1, 301, false, 0},
	} {
		again, delay := r.next(tc.attempt, tc.status)
		if again != tc.again || delay != tc.delay {
			t.Errorf("after attempt %d answered %d: again %v in %s, want %v in %s", tc.attempt, tc.status, again, delay, tc.again, tc.delay)
		}
	}
}

// fakeDelivery is a message as the engine hands it over, recording what became of it.
type fakeDelivery struct {
	data      []byte
	delivered uint64
	mu        sync.Mutex
	outcome   string // "ack", "nak", "nak 2s"
}

func (d *fakeDelivery) Data() []byte { return d.data }
func (d *fakeDelivery) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{NumDelivered: d.delivered}, nil
}
func (d *fakeDelivery) DoubleAck(context.Context) error { return d.set("ack") }
func (d *fakeDelivery) Nak() error                      { return d.set("nak") }
func (d *fakeDelivery) NakWithDelay(delay time.Duration) error {
	return d.set("nak " + delay.String())
}
func (d *fakeDelivery) InProgress() error { return nil }
func (d *fakeDelivery) set(s string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.outcome != "" {
		return errors.New("already " + d.outcome)
	}
	d.outcome = s
	return nil
}

// clock advances by step every time it is read, so that a call "takes" step.
type clock struct {
	mu   sync.Mutex
	now  time.Time
	step time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(c.step)
	return c.now
}

// memSink keeps what the stages stored.
type memSink struct {
	results  []*Result
	failures []api.QueueFailure
	err      error
}

func (s *memSink) putResult(_ context.Context, r *Result) error {
	if s.err != nil {
		return s.err
	}
	s.results = append(s.results, r)
	return nil
}

func (s *memSink) putFailure(_ context.Context, f api.QueueFailure) error {
	s.failures = append(s.failures, f)
	return nil
}

// answer is an Invoker that answers every call alike.
type answer struct {
	status int
	body   string
	got    *http.Request
}

func (a *answer) Invoke(w http.ResponseWriter, r *http.Request, name, path string) {
	a.got = r
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(a.status)
	io.WriteString(w, a.body)
}

func storedCall(t *testing.T, callback string) []byte {
	t.Helper()
	data, err := encode(&Call{
		ID: "id-1", Function: "fn", Method: "POST", Path: "/p", Query: "q=1",
		Header: http.Header{"X-In": {"1"}}, Host: "gw", CallbackURL: callback,
	}, []byte("body"))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestCallerDecidesWhatBecomesOfACall(t *testing.T) {
	for _, tc := range []struct {
		name      string
		status    int
		attempt   uint64
		callback  string
		sinkErr   error
		outcome   string
		results   int
		failed    bool
		processed bool
	}{
		{name: "success is acknowledged and its result stored for the callback", status: 200, attempt: 1, callback: "http://cb", outcome: "ack", results: 1, processed: true},
		{name: "success without a callback stores no result", status: 200, attempt: 1, outcome: "ack", processed: true},
		{name: "a 4xx is the function's final answer", status: 422, attempt: 1, callback: "http://cb", outcome: "ack", results: 1, processed: true},
		{name: "a 503 is tried again after the base delay", status: 503, attempt: 1, callback: "http://cb", outcome: "nak 1s"},
		{name: "the delay doubles with each attempt", status: 502, attempt: 3, callback: "http://cb", outcome: "nak 4s"},
		{name: "the last attempt fails for good and still calls back", status: 503, attempt: 4, callback: "http://cb", outcome: "ack", results: 1, failed: true},
		{name: "a result that cannot be stored runs the call again", status: 200, attempt: 1, callback: "http://cb", sinkErr: ErrFull, outcome: "nak 1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set := metrics.NewSet()
			sink := &memSink{err: tc.sinkErr}
			inv := &answer{status: tc.status, body: "answer"}
			clk := &clock{now: time.Unix(1000, 0), step: 1500 * time.Millisecond}
			c := caller{
				invoker: inv, sink: sink, retry: Retry{MaxAttempts: 4, Base: time.Second, Max: time.Minute},
				maxBody: 1 << 20, ackWait: time.Minute, now: clk.Now, stats: stats{set}, log: slog.New(slog.DiscardHandler),
			}
			d := &fakeDelivery{data: storedCall(t, tc.callback), delivered: tc.attempt}
			c.handle(context.Background(), d)

			if d.outcome != tc.outcome {
				t.Errorf("outcome %q, want %q", d.outcome, tc.outcome)
			}
			if len(sink.results) != tc.results {
				t.Fatalf("%d results stored, want %d", len(sink.results), tc.results)
			}
			if tc.results > 0 {
				r := sink.results[0]
				if r.Status != tc.status || string(r.Body) != "answer" || r.CallID != "id-1" || r.Duration != 1500*time.Millisecond || r.Attempts != int(tc.attempt) {
					t.Errorf("result %+v", r)
				}
			}
			if (len(sink.failures) == 1) != tc.failed {
				t.Errorf("failures %+v, want failed %v", sink.failures, tc.failed)
			}
			if tc.failed && (sink.failures[0].Stage != "function" || sink.failures[0].Status != tc.status || sink.failures[0].Attempts != int(tc.attempt)) {
				t.Errorf("failure %+v", sink.failures[0])
			}
			var b strings.Builder
			set.WritePrometheus(&b)
			if got := strings.Contains(b.String(), `faasd_queue_processed_total{function_name="fn.openfaas-fn"} 1`); got != tc.processed {
				t.Errorf("processed counted %v, want %v:\n%s", got, tc.processed, b.String())
			}
			r := inv.got
			if r.Method != "POST" || r.URL.RawQuery != "q=1" || r.Header.Get("X-In") != "1" || r.Header.Get("X-Call-Id") != "id-1" || r.Host != "gw" {
				t.Errorf("the function got %s %s %v", r.Method, r.URL, r.Header)
			}
		})
	}
}

func TestCallerHandsBackACallCutShortByAStop(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	inv := invokerFunc(func(w http.ResponseWriter, r *http.Request, _, _ string) {
		cancel()
		<-r.Context().Done()
		http.Error(w, "client went away", 499)
	})
	sink := &memSink{}
	c := caller{invoker: inv, sink: sink, retry: Retry{MaxAttempts: 3, Base: time.Second, Max: time.Minute},
		maxBody: 1 << 20, ackWait: time.Minute, now: time.Now, stats: stats{metrics.NewSet()}, log: slog.New(slog.DiscardHandler)}
	d := &fakeDelivery{data: storedCall(t, "http://cb"), delivered: 1}
	c.handle(ctx, d)
	if d.outcome != "nak" || len(sink.results)+len(sink.failures) != 0 {
		t.Errorf("outcome %q, results %d, failures %d: want the call back in the queue untouched", d.outcome, len(sink.results), len(sink.failures))
	}
}

type invokerFunc func(w http.ResponseWriter, r *http.Request, name, path string)

func (f invokerFunc) Invoke(w http.ResponseWriter, r *http.Request, name, path string) {
	f(w, r, name, path)
}

func TestNotifierPostsResultsAndRetriesWhatFailed(t *testing.T) {
	var mu sync.Mutex
	var got []*http.Request
	var bodies []string
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		got, bodies = append(got, r), append(bodies, string(b))
		w.WriteHeader(status)
	}))
	defer srv.Close()
	gone := httptest.NewServer(http.NotFoundHandler())
	refused := gone.URL
	gone.Close()

	for _, tc := range []struct {
		name     string
		url      string
		answer   int
		attempt  uint64
		outcome  string
		failures int
	}{
		{"delivered", srv.URL, 204, 1, "ack", 0},
		{"a 500 is tried again", srv.URL, 500, 1, "nak 1s", 0},
		{"a 429 is tried again, later", srv.URL, 429, 2, "nak 2s", 0},
		{"a refused connection is tried again", refused, 0, 1, "nak 1s", 0},
		{"a 400 fails at once", srv.URL, 400, 1, "ack", 1},
		{"the last attempt fails for good", refused, 0, 3, "ack", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			status, got, bodies = tc.answer, nil, nil
			mu.Unlock()
			sink := &memSink{}
			n := notifier{client: &http.Client{Timeout: 5 * time.Second}, sink: sink,
				retry: Retry{MaxAttempts: 3, Base: time.Second, Max: time.Minute},
				now:   time.Now, stats: stats{metrics.NewSet()}, log: slog.New(slog.DiscardHandler)}
			data, _ := encode(&Result{
				CallID: "id-7", Function: "fn", CallbackURL: tc.url + "/done", Status: 201,
				Header:   http.Header{"Content-Type": {"application/json"}, "Content-Length": {"99"}},
				Duration: 1500 * time.Millisecond,
			}, []byte(`{"ok":true}`))
			d := &fakeDelivery{data: data, delivered: tc.attempt}
			n.handle(context.Background(), d)
			if d.outcome != tc.outcome || len(sink.failures) != tc.failures {
				t.Fatalf("outcome %q with %d failures, want %q with %d", d.outcome, len(sink.failures), tc.outcome, tc.failures)
			}
			if tc.failures > 0 && (sink.failures[0].Stage != "callback" || sink.failures[0].Attempts != int(tc.attempt)) {
				t.Errorf("failure %+v", sink.failures[0])
			}
			if tc.url != srv.URL {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if len(got) != 1 {
				t.Fatalf("%d posts, want 1", len(got))
			}
			h := got[0].Header
			want := map[string]string{"X-Call-Id": "id-7", "X-Function-Name": "fn", "X-Function-Status": "201",
				"X-Duration-Seconds": "1.500000", "Content-Type": "application/json"}
			for k, v := range want {
				if h.Get(k) != v {
					t.Errorf("%s = %q, want %q", k, h.Get(k), v)
				}
			}
			if got[0].Method != "POST" || got[0].URL.Path != "/done" || bodies[0] != `{"ok":true}` {
				t.Errorf("posted %s %s %q", got[0].Method, got[0].URL, bodies[0])
			}
		})
	}
}

func TestStoredCallsKeepTheirBodyAsIs(t *testing.T) {
	body := []byte("line one\nline two\x00\xff")
	data, err := encode(&Call{ID: "x", Header: http.Header{"A": {"b\nc"}}}, body)
	if err != nil {
		t.Fatal(err)
	}
	var c Call
	got, err := decode(data, &c)
	if err != nil || string(got) != string(body) || c.ID != "x" || c.Header.Get("A") != "b\nc" {
		t.Errorf("decoded %q %+v %v", got, c, err)
	}
	if _, err := decode([]byte("no newline"), &c); err == nil {
		t.Error("a message without a header line decoded")
	}
	if !strings.HasSuffix(string(data), string(body)) {
		t.Errorf("the body is not stored as it is: %q", data)
	}
}
