package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"faasd/supervisor"
)

// The benchmarks measure what the gateway adds to a call: run them with
//
//	go test ./proxy -run '^$' -bench . -benchmem
//
// BenchmarkInvoke calls the handler directly, without the HTTP server in front, so its
// allocs/op are the gateway's own; BenchmarkHop goes through a real server and client on
// loopback, beside BenchmarkHopReverseProxy, the net/http reverse proxy the gateway used
// before, as a yardstick.

// rawReplica is a minimal keep-alive HTTP/1.1 server answering every request with a
// fixed small body (and echoing request bodies it is sent), so that the benchmarks
// measure the gateway rather than a server behind it.
func rawReplica(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveRaw(c)
		}
	}()
	return ln.Addr().String()
}

func serveRaw(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	bw := bufio.NewWriter(c)
	for {
		var length int64
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				return
			}
			if len(line) <= 2 {
				break
			}
			if k, v, ok := bytes.Cut(line, []byte(":")); ok && strings.EqualFold(string(k), "Content-Length") {
				length, _ = strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
			}
		}
		if length > 0 {
			fmt.Fprintf(bw, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", length)
			if _, err := io.CopyN(bw, br, length); err != nil {
				return
			}
		} else {
			bw.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 14\r\n\r\nHello, world!\n")
		}
		if bw.Flush() != nil {
			return
		}
	}
}

func benchProxy(b *testing.B, addrs ...string) *Proxy {
	rs := routes{}
	for i, a := range addrs {
		name := "fn"
		if i > 0 {
			name = fmt.Sprintf("fn%d", i)
		}
		rs[name] = supervisor.NewStaticRoute(spec(name), a)
	}
	return New(Options{Backends: rs, MaxBodyBytes: 64 << 20, HoldTimeout: time.Second})
}

// discardWriter is a ResponseWriter that keeps nothing, reused across calls. It takes
// deadlines as the server's does.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) SetReadDeadline(time.Time) error  { return nil }
func (w *discardWriter) SetWriteDeadline(time.Time) error { return nil }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkInvoke is the gateway's own cost of a call: routing, counters, the call id,
// balancing, and the exchange with a replica over a pooled connection.
func BenchmarkInvoke(b *testing.B) {
	p := benchProxy(b, rawReplica(b))
	req := httptest.NewRequest("GET", "/function/fn/", nil)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		p.ServeHTTP(w, req)
		if w.code != 200 {
			b.Fatalf("status %d", w.code)
		}
	}
}

// BenchmarkInvokeParallel is BenchmarkInvoke from as many goroutines as GOMAXPROCS, the
// per-function counters and the connection pool shared.
func BenchmarkInvokeParallel(b *testing.B) {
	p := benchProxy(b, rawReplica(b))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest("GET", "/function/fn/", nil)
		w := &discardWriter{h: http.Header{}}
		for pb.Next() {
			clear(w.h)
			p.ServeHTTP(w, req)
			if w.code != 200 {
				b.Errorf("status %d", w.code)
				return
			}
		}
	})
}

// BenchmarkHop is a whole call through the gateway's HTTP server, client to replica.
func BenchmarkHop(b *testing.B) {
	benchHop(b, benchProxy(b, rawReplica(b)), "/function/fn/")
}

// BenchmarkHopReverseProxy is the same hop through httputil.ReverseProxy.
func BenchmarkHopReverseProxy(b *testing.B) {
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: rawReplica(b)})
	rp.Transport = &http.Transport{MaxIdleConnsPerHost: 1024}
	benchHop(b, rp, "/")
}

// BenchmarkHopPost1MiB streams a 1 MiB request body through and back.
func BenchmarkHopPost1MiB(b *testing.B) {
	srv := httptest.NewServer(benchProxy(b, rawReplica(b)))
	defer srv.Close()
	body := bytes.Repeat([]byte("x"), 1<<20)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		resp, err := http.Post(srv.URL+"/function/fn/", "application/octet-stream", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || n != int64(len(body)) {
			b.Fatalf("status %d, %d bytes", resp.StatusCode, n)
		}
	}
}

func benchHop(b *testing.B, h http.Handler, path string) {
	srv := httptest.NewServer(h)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Get(srv.URL + path)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}
