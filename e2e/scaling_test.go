package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"faasd/internal/testkit"
)

// Fast scaling windows keep these tests short; the rule is the same as with defaults.
var fastScaling = testkit.Options{Gateway: `scale_down_window = "3s"`}

func TestStepLoadScalesOutAndBackToMin(t *testing.T) {
	d := testkit.StartDaemon(t, workload("busy", `labels = { "com.openfaas.scale.max" = "3" }`), fastScaling)
	pidsServing(t, d, "busy", 1)
	// 25 req/s against a target of 5 per replica (× 0.9) asks for 6; max caps it at 3.
	load := testkit.StartLoad(d.URL+"/function/busy/", 25, 5)
	testkit.WaitFor(t, 15*time.Second, "3 replicas under load", func() bool {
		return d.Metric("gateway_service_count", "busy") == 3 && d.Metric("faasd_replicas_ready", "busy") == 3
	})
	load.Stop()
	if n := load.Failed.Load(); n > 0 {
		t.Fatalf("%d requests failed while scaling out: %s", n, load.LastErr)
	}
	testkit.WaitFor(t, 20*time.Second, "back to 1 replica after the load", func() bool {
		return d.Metric("gateway_service_count", "busy") == 1 && d.Metric("faasd_replicas_ready", "busy") == 1
	})
}

func TestIdleFunctionSleepsAtZeroAndWakesOnARequest(t *testing.T) {
	m := marker(t)
	d := testkit.StartDaemon(t, workload("sleepy", fmt.Sprintf(`env = { MARKER = %q }
labels = { "com.openfaas.scale.zero" = "true", "com.openfaas.scale.zero-duration" = "1s" }`, m)), fastScaling)
	pidsServing(t, d, "sleepy", 1)
	testkit.WaitFor(t, 15*time.Second, "scale to zero", func() bool {
		return d.Metric("gateway_service_count", "sleepy") == 0 && len(testkit.ProcessesWith(m)) == 0
	})
	before := d.Metric("faasd_cold_starts_total", "sleepy")
	resp, err := http.Get(d.URL + "/function/sleepy/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("wake-up request: %d", resp.StatusCode)
	}
	if resp.Header.Get("X-Faasd-Cold-Start") == "" {
		t.Errorf("no X-Faasd-Cold-Start header on a request that woke the function: %v", resp.Header)
	}
	if after := d.Metric("faasd_cold_starts_total", "sleepy"); after != before+1 {
		t.Errorf("cold starts went from %v to %v, want one more", before, after)
	}
}

func TestBurstAtZeroAllSucceed(t *testing.T) {
	d := testkit.StartDaemon(t, workload("burst", `labels = { "com.openfaas.scale.min" = "0", "com.openfaas.scale.zero" = "true", "com.openfaas.scale.max" = "4" }`), fastScaling)
	if got := d.Metric("gateway_service_count", "burst"); got != 0 {
		t.Fatalf("min 0 should start at zero, has %v", got)
	}
	const n = 500
	var failed atomic.Int64
	var lastErr atomic.Value
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: n}, Timeout: 60 * time.Second}
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			resp, err := client.Get(d.URL + "/function/burst/sleep?d=50ms")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != 200 {
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
			}
			if err != nil {
				failed.Add(1)
				lastErr.Store(err.Error())
			}
		})
	}
	close(start)
	wg.Wait()
	if f := failed.Load(); f > 0 {
		t.Fatalf("%d of %d requests failed: %v", f, n, lastErr.Load())
	}
	// The burst is load: the scaler takes the function beyond the one replica the wake
	// started.
	testkit.WaitFor(t, 10*time.Second, "more replicas after the burst", func() bool {
		return d.Metric("gateway_service_count", "burst") > 1
	})
}

func TestSteadyLoadThroughScaleDownLosesNothing(t *testing.T) {
	d := testkit.StartDaemon(t, workload("steady", `labels = { "com.openfaas.scale.max" = "4" }`), fastScaling)
	pidsServing(t, d, "steady", 1)
	burst := testkit.StartLoad(d.URL+"/function/steady/sleep?d=20ms", 30, 6)
	testkit.WaitFor(t, 15*time.Second, "4 replicas under the burst", func() bool {
		return d.Metric("faasd_replicas_ready", "steady") == 4
	})
	// A steady trickle continues while the replicas drain away.
	steady := testkit.StartLoad(d.URL+"/function/steady/sleep?d=20ms", 3, 2)
	burst.Stop()
	testkit.WaitFor(t, 20*time.Second, "scale-down to 1 under the steady load", func() bool {
		return d.Metric("gateway_service_count", "steady") == 1 && d.Metric("faasd_replicas_ready", "steady") == 1
	})
	steady.Stop()
	if n := burst.Failed.Load() + steady.Failed.Load(); n > 0 {
		t.Fatalf("%d requests failed (burst: %s, steady: %s)", n, burst.LastErr, steady.LastErr)
	}
	if steady.OK.Load() < 5 {
		t.Fatalf("only %d steady requests ran", steady.OK.Load())
	}
}

// A scale to 0 right after some traffic holds: the autoscaler does not start a replica
// again from the rate it measured before the scale.
func TestManualScaleToZeroRightAfterTrafficHolds(t *testing.T) {
	d := testkit.StartDaemon(t, workload("calm", `labels = { "com.openfaas.scale.max" = "2" }`), fastScaling)
	pidsServing(t, d, "calm", 1)
	load := testkit.StartLoad(d.URL+"/function/calm/", 20, 4)
	testkit.WaitFor(t, 10*time.Second, "40 requests served", func() bool { return load.OK.Load() >= 40 })
	load.Stop()
	if code, body := d.API("POST", "/system/scale-function/calm", `{"replicas": 0}`); code != 202 {
		t.Fatalf("scale to 0: %d %s", code, body)
	}
	holdsAt(t, d, "calm", 0, 5)
	if strings.Contains(d.Log(), `msg=scaled function=calm from=0`) {
		t.Errorf("the autoscaler raised calm from zero:\n%s", d.Log())
	}
}

// holdsAt watches a function for the given number of autoscaler ticks, counted on the
// daemon's own history, and fails as soon as its desired count is not replicas.
func holdsAt(t *testing.T, d *testkit.Daemon, name string, replicas int, ticks uint64) {
	t.Helper()
	var last uint64
	seq := func() uint64 {
		code, body := d.API("GET", fmt.Sprintf("/system/history?name=%s&since=%d", name, last), "")
		var h struct{ Seq uint64 }
		if code != 200 || json.Unmarshal([]byte(body), &h) != nil {
			t.Fatalf("history of %s: %d %s", name, code, body)
		}
		last = h.Seq
		return h.Seq
	}
	start := seq()
	testkit.WaitFor(t, time.Duration(ticks+5)*time.Second, fmt.Sprintf("%d ticks of the autoscaler", ticks), func() bool {
		if st := getStatus(t, d, name); st.Replicas != replicas {
			t.Fatalf("%s at %d replicas, want it held at %d", name, st.Replicas, replicas)
		}
		return seq() >= start+ticks
	})
}
