// Command scaleup measures how fast a step of load turns into replicas: the time from the
// first request of a step to the scaler asking for the target count, and to that many
// replicas being ready.
//
//	go run ./bench/scaleup [-n 5] [-rps 40]
//
// It serves bin/hello-go with max 4 replicas and the default policy (5 req/s per replica,
// proportion 0.9), so 40 req/s asks for all 4. Between steps the load stops and the
// function goes back to one replica. Root, 127.0.0.1 only, bounded in time.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

func main() {
	n := flag.Int("n", 5, "steps to measure")
	rps := flag.Float64("rps", 40, "request rate of a step")
	listen := flag.String("listen", "127.0.0.1:18094", "address of the benchmark's daemon")
	flag.Parse()
	const target = 4

	work, err := os.MkdirTemp("/var/tmp", "faasd-bench-scaleup-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(work)
	os.Chmod(work, 0o755)
	for _, b := range []struct{ out, pkg string }{{"faasd", "./cmd/faasd"}, {"hello-go", "./examples/hello-go"}} {
		if out, err := exec.Command("go", "build", "-tags", "osusergo,netgo", "-o", filepath.Join(work, b.out), b.pkg).CombinedOutput(); err != nil {
			log.Fatalf("build %s: %v\n%s", b.pkg, err, out)
		}
	}
	cfg := filepath.Join(work, "faasd.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`[gateway]
listen = %q
auth = false
scale_down_window = "2s"
[functions.hello]
command = [%q]
labels = { "com.openfaas.scale.max" = "%d" }
`, *listen, filepath.Join(work, "hello-go"), target)), 0o644)
	daemon := exec.Command(filepath.Join(work, "faasd"), "serve", "-f", cfg, "--log-level", "warn")
	daemon.Stderr = os.Stderr
	if err := daemon.Start(); err != nil {
		log.Fatal(err)
	}
	defer func() {
		daemon.Process.Signal(os.Interrupt)
		daemon.Wait()
	}()
	base := "http://" + *listen
	waitFor(func() bool { return metric(base, "faasd_replicas_ready") == 1 }, 20*time.Second, "the first replica")

	var toDesired, toReady []time.Duration
	for i := range *n {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		start := time.Now()
		for w := range 4 {
			wg.Go(func() {
				interval := time.Duration(float64(time.Second) * 4 / *rps)
				next := start.Add(interval * time.Duration(w) / 4)
				for {
					select {
					case <-stop:
						return
					case <-time.After(time.Until(next)):
					}
					next = next.Add(interval)
					if resp, err := http.Get(base + "/function/hello/"); err == nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
				}
			})
		}
		waitFor(func() bool { return metric(base, "gateway_service_count") == target }, 30*time.Second, "the target count")
		desired := time.Since(start)
		waitFor(func() bool { return metric(base, "faasd_replicas_ready") == target }, 30*time.Second, "the target count ready")
		ready := time.Since(start)
		close(stop)
		wg.Wait()
		toDesired, toReady = append(toDesired, desired), append(toReady, ready)
		fmt.Printf("step %d: %d desired after %s, ready after %s\n", i+1, target, desired.Round(time.Millisecond), ready.Round(time.Millisecond))
		waitFor(func() bool {
			return metric(base, "faasd_replicas_ready") == 1 && metric(base, "gateway_service_count") == 1
		}, 60*time.Second, "back to one replica")
	}
	fmt.Printf("\nstep of %.0f req/s to %d replicas (scale_interval 1s), %d steps:\n", *rps, target, *n)
	fmt.Printf("  to desired: p50 %s  max %s\n", pct(toDesired, 50), slices.Max(toDesired).Round(time.Millisecond))
	fmt.Printf("  to ready:   p50 %s  max %s\n", pct(toReady, 50), slices.Max(toReady).Round(time.Millisecond))
}

func pct(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)*p/100].Round(time.Millisecond)
}

func waitFor(cond func() bool, limit time.Duration, what string) {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			log.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// metric reads one value of the hello function from /metrics, or -1.
func metric(base, name string) float64 {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	prefix := name + `{function_name="hello.openfaas-fn"} `
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			var f float64
			fmt.Sscanf(v, "%g", &f)
			return f
		}
	}
	return -1
}
