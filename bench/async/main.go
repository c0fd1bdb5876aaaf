// Command async measures asynchronous invocations with the embedded queue, beside the
// synchronous path in the same run:
//
//   - enqueue: 202s per second from 16 connections POSTing /async-function/hello;
//   - sync: 200s per second from 16 connections GETting /function/hello, for the ratio;
//   - end to end: from POST to the callback's arrival at a local receiver, p50 and p99,
//     4 calls in flight at a time;
//   - start-up: exec to a 200 from /healthz, with an empty state and with a queue that
//     was used before (its engine then starts at boot); with -baseline, also for
//     another binary (say, a build without the queue).
//
// Two daemons are compared round by round: [queue] fsync = false (the default) and true.
//
//	go run ./bench/async [-rounds 3] [-n 2000] [-baseline /path/to/old/faasd]
//
// Root, 127.0.0.1 only, bounded in time.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	rounds := flag.Int("rounds", 3, "rounds of each measurement")
	n := flag.Int("n", 2000, "calls per throughput pass")
	e2e := flag.Int("e2e", 400, "calls per end-to-end pass")
	baseline := flag.String("baseline", "", "another faasd binary whose start-up to compare")
	flag.Parse()
	if load, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Printf("load average at start: %s", load)
	}

	work, err := os.MkdirTemp("/var/tmp", "faasd-bench-async-")
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
	if st, err := os.Stat(filepath.Join(work, "faasd")); err == nil {
		fmt.Printf("binary: %d bytes\n", st.Size())
	}

	var got sync.Map // call id → time the callback arrived
	receiver := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		got.Store(r.Header.Get("X-Call-Id"), time.Now())
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go receiver.Serve(ln)
	callbackURL := "http://" + ln.Addr().String() + "/done"

	modes := []*daemon{
		start(work, "default", "fsync = false"),
		start(work, "fsync", "fsync = true"),
	}
	defer func() {
		for _, d := range modes {
			d.stop()
		}
	}()
	results := map[string]map[string][]float64{}
	for _, d := range modes {
		results[d.name] = map[string][]float64{}
	}
	for round := range *rounds {
		for _, d := range modes {
			r := results[d.name]
			r["enqueue/s"] = append(r["enqueue/s"], d.throughput(*n, "POST", "/async-function/hello"))
			d.drain()
			r["sync/s"] = append(r["sync/s"], d.throughput(*n, "GET", "/function/hello"))
			p50, p99 := d.endToEnd(*e2e, callbackURL, &got)
			r["e2e p50 ms"] = append(r["e2e p50 ms"], p50)
			r["e2e p99 ms"] = append(r["e2e p99 ms"], p99)
		}
		fmt.Printf("round %d done\n", round+1)
	}
	fmt.Printf("\n%-8s %12s %12s %10s %12s %12s\n", "queue", "enqueue/s", "sync/s", "enq/sync", "e2e p50 ms", "e2e p99 ms")
	for _, d := range modes {
		r := results[d.name]
		enq, syn := median(r["enqueue/s"]), median(r["sync/s"])
		fmt.Printf("%-8s %12.0f %12.0f %10.2f %12.2f %12.2f\n", d.name, enq, syn, enq/syn, median(r["e2e p50 ms"]), median(r["e2e p99 ms"]))
	}
	for _, d := range modes {
		d.stop()
	}

	fmt.Printf("\nstart-up, exec to /healthz (median of %d):\n", 5**rounds)
	binaries := []struct{ name, bin, state string }{
		{"empty state", filepath.Join(work, "faasd"), ""},
		{"queue in use", filepath.Join(work, "faasd"), modes[0].state}, // its engine starts at boot
	}
	if *baseline != "" {
		binaries = append(binaries, struct{ name, bin, state string }{"baseline binary", *baseline, ""})
	}
	times := map[string][]float64{}
	for range 5 * *rounds {
		for _, b := range binaries {
			times[b.name] = append(times[b.name], startup(work, b.bin, b.state))
		}
	}
	for _, b := range binaries {
		fmt.Printf("  %-18s %7.1f ms\n", b.name, median(times[b.name]))
	}
}

type daemon struct {
	name, base, state string
	cmd               *exec.Cmd
}

func start(work, name, queueTOML string) *daemon {
	dir := filepath.Join(work, name)
	os.MkdirAll(dir, 0o755)
	addr := freeAddr()
	cfg := filepath.Join(dir, "faasd.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`[gateway]
listen = %q
auth = false
[queue]
%s
[functions.hello]
command = [%q]
labels = { "com.openfaas.scale.min" = "2", "com.openfaas.scale.max" = "2", "com.openfaas.queue.max-inflight" = "16" }
`, addr, queueTOML, filepath.Join(work, "hello-go"))), 0o644)
	d := &daemon{name: name, base: "http://" + addr, state: filepath.Join(dir, ".faasd")}
	d.cmd = exec.Command(filepath.Join(work, "faasd"), "serve", "-f", cfg, "--log-level", "warn")
	d.cmd.Stderr = os.Stderr
	// Gone with the benchmark, whichever way it ends.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		log.Fatal(err)
	}
	waitFor(func() bool { return metric(d.base, "faasd_replicas_ready") == 2 }, 20*time.Second, name+": two replicas")
	return d
}

func (d *daemon) stop() {
	if d.cmd.ProcessState == nil {
		d.cmd.Process.Signal(os.Interrupt)
		d.cmd.Wait()
	}
}

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 30 * time.Second}

// throughput sends n requests from 16 connections and returns successes per second.
func (d *daemon) throughput(n int, method, path string) float64 {
	var next, ok atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range 16 {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				req, _ := http.NewRequest(method, d.base+path, strings.NewReader("x"))
				resp, err := client.Do(req)
				if err != nil {
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode < 300 {
					ok.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return float64(ok.Load()) / time.Since(start).Seconds()
}

// drain waits until the queue ran every call.
func (d *daemon) drain() {
	waitFor(func() bool { return metric(d.base, "faasd_queue_messages") == 0 }, 2*time.Minute, d.name+": the queue to drain")
}

// endToEnd sends n calls with a callback, 4 at a time, and returns p50 and p99 of the
// time from the POST to the callback's arrival, in milliseconds.
func (d *daemon) endToEnd(n int, callbackURL string, got *sync.Map) (float64, float64) {
	sent := make([]time.Time, n)
	ids := make([]string, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				ids[i] = fmt.Sprintf("%s-%d-%d-%d", d.name, time.Now().UnixNano(), w, i)
				req, _ := http.NewRequest("POST", d.base+"/async-function/hello", strings.NewReader("x"))
				req.Header.Set("X-Call-Id", ids[i])
				req.Header.Set("X-Callback-Url", callbackURL)
				sent[i] = time.Now()
				resp, err := client.Do(req)
				if err != nil {
					log.Fatalf("%s: %v", d.name, err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				// Wait for this call's callback before the next: latency, not backlog.
				waitFor(func() bool { _, ok := got.Load(ids[i]); return ok }, time.Minute, "a callback")
			}
		})
	}
	wg.Wait()
	lat := make([]float64, n)
	for i, id := range ids {
		at, _ := got.Load(id)
		lat[i] = float64(at.(time.Time).Sub(sent[i]).Microseconds()) / 1000
	}
	slices.Sort(lat)
	return lat[n/2], lat[n*99/100]
}

// startup runs a daemon with a copy of state (or none) and returns ms from exec to /healthz.
func startup(work, bin, state string) float64 {
	dir, _ := os.MkdirTemp(work, "startup-")
	defer os.RemoveAll(dir)
	if state != "" {
		if out, err := exec.Command("cp", "-a", state, filepath.Join(dir, ".faasd")).CombinedOutput(); err != nil {
			log.Fatalf("copy state: %v %s", err, out)
		}
	}
	addr := freeAddr()
	cfg := filepath.Join(dir, "faasd.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("[gateway]\nlisten = %q\nauth = false\n", addr)), 0o644)
	cmd := exec.Command(bin, "serve", "-f", cfg, "--log-level", "warn")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	begin := time.Now()
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}()
	var took time.Duration
	waitFor(func() bool {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		took = time.Since(begin)
		return resp.StatusCode == 200
	}, 20*time.Second, "/healthz")
	return float64(took.Microseconds()) / 1000
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func metric(base, name string) float64 {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sum, found := 0.0, false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, name+"{") || strings.HasPrefix(line, name+" ") {
			var v float64
			fmt.Sscanf(line[strings.LastIndexByte(line, ' ')+1:], "%g", &v)
			sum, found = sum+v, true
		}
	}
	if !found {
		return -1
	}
	return sum
}

func waitFor(cond func() bool, timeout time.Duration, what string) {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			log.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(time.Millisecond)
	}
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
