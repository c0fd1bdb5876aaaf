package proxy

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"faasd/api"
	"faasd/catalog"
	"faasd/config"
	"faasd/scaler"
	"faasd/supervisor"
)

// functions is a Catalog of fixed functions; the history routes only read it.
type functions []string

func (f functions) List() []catalog.Function {
	out := make([]catalog.Function, 0, len(f))
	for _, name := range f {
		out = append(out, catalog.Function{Spec: &config.Function{Name: name}, Source: "api"})
	}
	return out
}

func (f functions) Get(name string) (catalog.Function, bool) {
	if !slices.Contains(f, name) {
		return catalog.Function{}, false
	}
	return catalog.Function{Spec: &config.Function{Name: name}, Source: "api"}, true
}

func (functions) Create(api.Deployment) error  { return nil }
func (functions) Update(api.Deployment) error  { return nil }
func (functions) Delete(string) error          { return nil }
func (functions) Secrets() *catalog.Secrets    { return nil }
func (functions) DeleteSecret(string) error    { return nil }
func (functions) File() (api.ConfigInfo, bool) { return api.ConfigInfo{}, false }

// replicas is a Control that reports fixed replicas.
type replicas map[string]supervisor.Status

func (r replicas) Status(name string) (supervisor.Status, bool) { st, ok := r[name]; return st, ok }
func (replicas) Scale(string, int) error                        { return nil }
func (replicas) Logs(string) (*supervisor.Logs, bool)           { return nil, false }
func (replicas) RefreshSecret(string) error                     { return nil }

// oneFunction is a scaler Target of one function whose count the test sets.
type oneFunction struct {
	mu sync.Mutex
	fn scaler.Function
}

func (o *oneFunction) Functions() []scaler.Function {
	o.mu.Lock()
	defer o.mu.Unlock()
	return []scaler.Function{o.fn}
}

func (o *oneFunction) Scale(_ string, n int) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.fn.Replicas = n
	return nil
}

// load is a scaler Source whose request counter the test moves.
type load struct{ requests uint64 }

func (l *load) Observe(string) scaler.Observation { return scaler.Observation{Requests: l.requests} }

func getJSON(t *testing.T, h http.Handler, path string, auth bool, out any) int {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	if auth {
		req.SetBasicAuth("admin", "pw")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code == 200 && out != nil {
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("GET %s: Content-Type %q", path, ct)
		}
		if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
			t.Fatalf("GET %s: %v in %s", path, err, rec.Body)
		}
	}
	if rec.Code != 200 {
		out = nil
		t.Logf("GET %s: %d %s", path, rec.Code, strings.TrimSpace(rec.Body.String()))
	}
	return rec.Code
}

func TestHistoryEndpoint(t *testing.T) {
	target := &oneFunction{fn: scaler.Function{Name: "busy", Policy: config.DefaultScalePolicy, Replicas: 1, Ready: 1}}
	src := &load{}
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	now := t0
	sc := scaler.New(target, src, scaler.Settings{}, func() time.Time { return now }, nil)
	tick := func(requests uint64) {
		now = now.Add(time.Second)
		src.requests += requests
		sc.Step(now)
	}
	tick(0)
	tick(30) // 30 req/s: up to 5 at once
	tick(30)

	p := New(Options{Backends: routes{}, Catalog: functions{"busy", "new"}, Control: replicas{},
		History: sc, Credentials: &Credentials{User: "admin", Password: "pw"}})

	var h api.History
	if code := getJSON(t, p, "/system/history?name=busy", true, &h); code != 200 {
		t.Fatalf("status %d", code)
	}
	if h.Name != "busy" || h.Interval != 1 || h.Seq != 3 || len(h.Samples) != 3 {
		t.Fatalf("history %+v: want busy, interval 1, seq 3, 3 samples", h)
	}
	last := h.Samples[2]
	want := api.Sample{Seq: 3, Time: t0.Add(3 * time.Second).UnixMilli(), RPS: 30, Desired: 5, Ready: 1}
	if last != want {
		t.Errorf("last sample %+v, want %+v", last, want)
	}
	if len(h.Changes) != 1 || h.Changes[0] != (api.ScaleChange{Seq: 2, Time: t0.Add(2 * time.Second).UnixMilli(), From: 1, To: 5, Reason: "load"}) {
		t.Errorf("changes %+v, want 1 → 5 for load at seq 2", h.Changes)
	}

	// Polling with the seq it got: only what is new, and arrays, never null.
	var raw map[string]json.RawMessage
	getJSON(t, p, "/system/history?name=busy&since=3", true, &raw)
	if string(raw["samples"]) != "[]" || string(raw["changes"]) != "[]" || string(raw["seq"]) != "3" {
		t.Errorf("nothing new: %s", raw)
	}
	tick(0)
	getJSON(t, p, "/system/history?name=busy&since=3", true, &h)
	if h.Seq != 4 || len(h.Samples) != 1 || h.Samples[0].Seq != 4 {
		t.Errorf("one tick later: %+v", h)
	}
	// A seq from before a restart of the daemon is ahead of the ticks: everything comes.
	getJSON(t, p, "/system/history?name=busy&since=99", true, &h)
	if h.Seq != 4 || len(h.Samples) != 4 {
		t.Errorf("since ahead of the daemon: seq %d with %d samples, want 4 and 4", h.Seq, len(h.Samples))
	}

	// Every function, those the scaler has not seen yet included.
	var all []api.History
	getJSON(t, p, "/system/history", true, &all)
	if len(all) != 2 || all[0].Name != "busy" || len(all[0].Samples) != 4 || all[1].Name != "new" || all[1].Samples == nil || len(all[1].Samples) != 0 {
		t.Errorf("all: %+v", all)
	}

	for _, tc := range []struct {
		path string
		auth bool
		want int
	}{
		{"/system/history?name=busy", false, 401},
		{"/system/history?name=nope", true, 404},
		{"/system/history?name=busy&since=-1", true, 400},
		{"/system/history?name=busy&since=x", true, 400},
		{"/system/history?name=busy&namespace=other", true, 400},
		{"/system/history?name=busy&namespace=openfaas-fn", true, 200},
	} {
		if code := getJSON(t, p, tc.path, tc.auth, nil); code != tc.want {
			t.Errorf("GET %s (auth %v): %d, want %d", tc.path, tc.auth, code, tc.want)
		}
	}
}

func TestNoHistoryMeansNoRoute(t *testing.T) {
	p := New(Options{Backends: routes{}, Catalog: functions{"busy"}, Control: replicas{}})
	if code := getJSON(t, p, "/system/history", false, nil); code != 404 {
		t.Errorf("GET /system/history without a history: %d, want 404", code)
	}
}

func TestStatusDescribesEachReplica(t *testing.T) {
	started := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	route := supervisor.NewStaticRoute(spec("fn"), "127.0.0.1:1", "127.0.0.1:2")
	eps, _ := route.Endpoints()
	eps[1].Acquire() // a request in flight on replica 2, which the published status has not seen
	ctl := replicas{"fn": {Name: "fn", Desired: 3, Ready: 2, Starting: 1, State: "starting", Replicas: []supervisor.ReplicaStatus{
		{ID: "1", PID: 101, Port: 1, State: "ready", Started: started},
		{ID: "2", PID: 102, Port: 2, State: "ready", Started: started},
		{ID: "3", Port: 3, State: "starting", Started: started},
	}}}
	p := New(Options{Backends: routes{"fn": route}, Catalog: functions{"fn"}, Control: ctl})
	var st api.FunctionStatus
	if code := getJSON(t, p, "/system/function/fn", false, &st); code != 200 {
		t.Fatalf("status %d", code)
	}
	want := []api.Instance{
		{ID: "1", PID: 101, Port: 1, State: "ready", StartedAt: started},
		{ID: "2", PID: 102, Port: 2, State: "ready", StartedAt: started, InFlight: 1},
		{ID: "3", Port: 3, State: "starting", StartedAt: started},
	}
	if len(st.Instances) != len(want) {
		t.Fatalf("instances %+v, want %+v", st.Instances, want)
	}
	for i := range want {
		got := st.Instances[i]
		if got.ID != want[i].ID || got.PID != want[i].PID || got.Port != want[i].Port || got.State != want[i].State ||
			!got.StartedAt.Equal(want[i].StartedAt) || got.InFlight != want[i].InFlight || got.Restarts != nil || got.Usage != nil {
			t.Errorf("instance %d: %+v, want %+v", i, got, want[i])
		}
	}
	if st.Usage != nil {
		t.Errorf("usage %+v before anything measures it", st.Usage)
	}
}
