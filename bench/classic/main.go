// Command classic measures classic mode: a command forked once per request, here `cat`,
// called through faasd by 8 concurrent clients, beside the floor measured in the same run:
// the same 8 workers fork-exec'ing `cat` directly with the body on stdin, no HTTP at all.
//
//	go run ./bench/classic [-rounds 3] [-duration 5s] [-c 8]
//
// Rounds alternate between the two so that the machine's noise hits both. It needs root
// (replicas run as unprivileged accounts in their own mount namespaces) and uses 127.0.0.1 only.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"faasd/internal/testkit"
)

func main() {
	rounds := flag.Int("rounds", 3, "rounds of each measurement")
	duration := flag.Duration("duration", 5*time.Second, "length of one measurement")
	conc := flag.Int("c", 8, "concurrent clients")
	flag.Parse()
	testkit.RunProgram(func(p *testkit.Program) { run(p, *rounds, *duration, *conc) })
}

func run(p *testkit.Program, rounds int, duration time.Duration, conc int) {
	d := testkit.StartDaemon(p, `[functions.cat]
fprocess = "cat"
labels = { "com.openfaas.scale.min" = "1", "com.openfaas.scale.max" = "1" }
`, testkit.Options{LogLevel: "warn"})
	url := d.URL + "/function/cat"
	body := []byte("hello, classic mode\n")
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc}}
	call := func() error {
		resp, err := client.Post(url, "text/plain", bytes.NewReader(body))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		got, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || !bytes.Equal(got, body) {
			return fmt.Errorf("status %d body %q", resp.StatusCode, got)
		}
		return nil
	}
	testkit.WaitFor(p, 20*time.Second, "the cat function to answer", func() bool { return call() == nil })
	fork := func() error {
		cmd := exec.Command("cat")
		cmd.Stdin = bytes.NewReader(body)
		out, err := cmd.Output()
		if err == nil && !bytes.Equal(out, body) {
			err = fmt.Errorf("cat wrote %q", out)
		}
		return err
	}
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("classic mode, %d clients, %d rounds × %s; load average %s\n", conc, rounds, duration, strings.Fields(string(load))[0])
	results := map[string][]result{}
	for r := range rounds {
		for _, m := range []struct {
			name string
			fn   func() error
		}{{"fork-exec cat (floor)", fork}, {"faasd /function/cat", call}} {
			res := measure(m.fn, conc, duration)
			results[m.name] = append(results[m.name], res)
			fmt.Printf("  round %d %-22s %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  errors %d\n", r+1, m.name, res.rps, ms(res.p50), ms(res.p99), res.errors)
		}
	}
	floor, faasd := median(results["fork-exec cat (floor)"]), median(results["faasd /function/cat"])
	fmt.Printf("\nmedian of rounds\n  %-22s %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms\n", "fork-exec cat (floor)", floor.rps, ms(floor.p50), ms(floor.p99))
	fmt.Printf("  %-22s %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms\n", "faasd /function/cat", faasd.rps, ms(faasd.p50), ms(faasd.p99))
	fmt.Printf("  faasd/floor throughput %.2f; p50 added %.2f ms\n", faasd.rps/floor.rps, ms(faasd.p50-floor.p50))
	fmt.Printf("  reference: the OpenFaaS classic watchdog forking cat, ~1280 req/s on this class of machine\n")
}

type result struct {
	rps      float64
	p50, p99 time.Duration
	errors   int
}

// measure runs fn from conc workers for d and reports throughput and latency.
func measure(fn func() error, conc int, d time.Duration) result {
	var mu sync.Mutex
	var lat []time.Duration
	errors := 0
	end := time.Now().Add(d)
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			var mine []time.Duration
			bad := 0
			for time.Now().Before(end) {
				start := time.Now()
				if fn() != nil {
					bad++
					continue
				}
				mine = append(mine, time.Since(start))
			}
			mu.Lock()
			lat = append(lat, mine...)
			errors += bad
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(lat)
	res := result{rps: float64(len(lat)) / d.Seconds(), errors: errors}
	if len(lat) > 0 {
		res.p50, res.p99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}
	return res
}

func median(rs []result) result {
	slices.SortFunc(rs, func(a, b result) int { return int(a.rps - b.rps) })
	return rs[len(rs)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
