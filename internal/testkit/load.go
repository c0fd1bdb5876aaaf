package testkit

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Load sends GETs to url at about rps requests a second from workers goroutines until
// stop is closed, and counts what failed.
type Load struct {
	OK, Failed atomic.Int64
	mu         sync.Mutex
	LastErr    string
	wg         sync.WaitGroup
	stop       chan struct{}
}

// StartLoad begins a paced load; call Stop to end it.
func StartLoad(url string, rps float64, workers int) *Load {
	l := &Load{stop: make(chan struct{})}
	interval := time.Duration(float64(time.Second) * float64(workers) / rps)
	client := &http.Client{Timeout: 30 * time.Second}
	for w := range workers {
		l.wg.Go(func() {
			// Spread the workers over the interval so the rate is even.
			next := time.Now().Add(interval * time.Duration(w) / time.Duration(workers))
			for {
				select {
				case <-l.stop:
					return
				case <-time.After(time.Until(next)):
				}
				next = next.Add(interval)
				resp, err := client.Get(url)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					l.Failed.Add(1)
					l.mu.Lock()
					l.LastErr = err.Error()
					l.mu.Unlock()
				} else {
					l.OK.Add(1)
				}
			}
		})
	}
	return l
}

// Stop ends the load and waits for the requests in flight.
func (l *Load) Stop() {
	close(l.stop)
	l.wg.Wait()
}
