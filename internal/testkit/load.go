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
	failures   []Failure
	wg         sync.WaitGroup
	stop       chan struct{}
}

// Failure is one request of a load that failed, with when it was sent and when it
// failed.
type Failure struct {
	Start, End time.Time
	Err        string
}

// Failures returns the requests that failed so far.
func (l *Load) Failures() []Failure {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Failure(nil), l.failures...)
}

// StartLoad begins a paced load of GETs; call Stop to end it.
func StartLoad(url string, rps float64, workers int) *Load {
	return startLoad(http.MethodGet, url, rps, workers)
}

// StartPostLoad begins a paced load of POSTs without a body. Unlike a GET, a POST whose
// connection breaks is never sent again by a client or a proxy on its own, so a request
// the server lost is a failure.
func StartPostLoad(url string, rps float64, workers int) *Load {
	return startLoad(http.MethodPost, url, rps, workers)
}

func startLoad(method, url string, rps float64, workers int) *Load {
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
				start := time.Now()
				req, err := http.NewRequest(method, url, nil)
				if err != nil {
					panic(err)
				}
				resp, err := client.Do(req)
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
					l.failures = append(l.failures, Failure{Start: start, End: time.Now(), Err: err.Error()})
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
