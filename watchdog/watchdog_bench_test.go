package watchdog

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
)

// benchClients is the number of concurrent clients, as in the comparison with the OpenFaaS
// classic watchdog (about 1,280 req/s forking cat on 2 cores).
const benchClients = 8

// BenchmarkInvokeCat measures whole invocations through Serve over loopback: HTTP request,
// fork/exec of cat, body in, output back, reap. Logging goes to io.Discard, so the two log
// lines per request cost less than they would on a real stderr.
func BenchmarkInvokeCat(b *testing.B) {
	for _, size := range []int{11, 64 << 10} {
		b.Run(fmt.Sprintf("body=%dB", size), func(b *testing.B) {
			benchmarkInvoke(b, "cat", bytes.Repeat([]byte("x"), size))
		})
	}
}

func benchmarkInvoke(b *testing.B, fprocess string, payload []byte) {
	cfg, err := ConfigFromEnv(func(k string) string {
		return map[string]string{"PORT": "8080", "fprocess": fprocess, "TMPDIR": b.TempDir()}[k]
	})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, cfg, io.Discard) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	}()

	url := "http://" + ln.Addr().String() + "/"
	client := &http.Client{Transport: &http.Transport{
		MaxIdleConnsPerHost: benchClients,
		DisableCompression:  true,
	}}
	defer client.CloseIdleConnections()

	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, benchClients)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	b.ResetTimer()
	for range benchClients {
		wg.Go(func() {
			got := make([]byte, 0, len(payload))
			for next.Add(1) <= int64(b.N) {
				resp, err := client.Post(url, "application/octet-stream", bytes.NewReader(payload))
				if err != nil {
					errs <- err
					return
				}
				buf := bytes.NewBuffer(got[:0])
				_, err = buf.ReadFrom(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(buf.Bytes(), payload) {
					errs <- fmt.Errorf("status %d, %d bytes back, err %v", resp.StatusCode, buf.Len(), err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}
