// Command scaleup measures how fast a step of load turns into replicas: the time from the
// first request of a step to the scaler asking for the target count, and to that many
// replicas being ready.
//
//	go run ./bench/scaleup [-n 5] [-rps 40]
//
// It serves hello-go with max 4 replicas and the default policy (5 req/s per replica,
// proportion 0.9), so 40 req/s asks for all 4. Between steps the load stops and the
// function goes back to one replica. Root, 127.0.0.1 only, bounded in time.
package main

import (
	"flag"
	"fmt"
	"slices"
	"time"

	"faasd/internal/testkit"
)

// target is the replica count a step asks for.
const target = 4

func main() {
	n := flag.Int("n", 5, "steps to measure")
	rps := flag.Float64("rps", 40, "request rate of a step")
	flag.Parse()
	testkit.RunProgram(func(p *testkit.Program) { run(p, *n, *rps) })
}

func run(p *testkit.Program, n int, rps float64) {
	d := testkit.StartDaemon(p, fmt.Sprintf(`[functions.hello]
command = ["{{BIN}}/hello-go"]
labels = { "com.openfaas.scale.max" = "%d" }
`, target), testkit.Options{Gateway: `scale_down_window = "2s"`, LogLevel: "warn"})
	metric := func(name string) float64 { return d.Metric(name, "hello") }
	testkit.WaitFor(p, 20*time.Second, "the first replica", func() bool { return metric("faasd_replicas_ready") == 1 })

	var toDesired, toReady []time.Duration
	for i := range n {
		start := time.Now()
		load := testkit.StartLoad(d.URL+"/function/hello/", rps, 4)
		testkit.WaitFor(p, 30*time.Second, "the target count", func() bool { return metric("gateway_service_count") == target })
		desired := time.Since(start)
		testkit.WaitFor(p, 30*time.Second, "the target count ready", func() bool { return metric("faasd_replicas_ready") == target })
		ready := time.Since(start)
		load.Stop()
		toDesired, toReady = append(toDesired, desired), append(toReady, ready)
		fmt.Printf("step %d: %d desired after %s, ready after %s (%d requests, %d failed)\n", i+1, target,
			desired.Round(time.Millisecond), ready.Round(time.Millisecond), load.OK.Load()+load.Failed.Load(), load.Failed.Load())
		testkit.WaitFor(p, 60*time.Second, "back to one replica", func() bool {
			return metric("faasd_replicas_ready") == 1 && metric("gateway_service_count") == 1
		})
	}
	fmt.Printf("\nstep of %.0f req/s to %d replicas (scale_interval 1s), %d steps:\n", rps, target, n)
	fmt.Printf("  to desired: p50 %s  max %s\n", pct(toDesired, 50), slices.Max(toDesired).Round(time.Millisecond))
	fmt.Printf("  to ready:   p50 %s  max %s\n", pct(toReady, 50), slices.Max(toReady).Round(time.Millisecond))
}

func pct(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)*p/100].Round(time.Millisecond)
}
