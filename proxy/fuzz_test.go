package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The fuzz targets hold the gateway's own HTTP/1.1 readers to net/http's: whatever the
// fast path serves, net/http's server serves alike (same requests, same bodies, same
// place where the next request starts), and whatever the gateway relays from a replica,
// net/http's client reads alike. Run them longer with `make fuzz`.

// served is what a server made of one request: enough to tell two readings apart.
type served struct {
	Method, URI, Host, Path, RawPath, Query string
	Close, Chunked                          bool
	Length                                  int64
	Header                                  http.Header // less the framing fields
	Body                                    string
}

func snapshot(r *http.Request, body []byte) served {
	h := r.Header.Clone()
	delete(h, "Transfer-Encoding")
	delete(h, "Content-Length")
	if len(h) == 0 {
		h = nil
	}
	return served{
		Method: r.Method, URI: r.RequestURI, Host: r.Host, Path: r.URL.Path, RawPath: r.URL.EscapedPath(),
		Query: r.URL.RawQuery, Close: r.Close, Chunked: slices.Equal(r.TransferEncoding, chunkedEncoding),
		Length: r.ContentLength, Header: h, Body: string(body),
	}
}

// netHTTPServes runs raw through net/http's server, as sent by a client that then
// half-closes, and returns the requests whose bodies its handler read whole.
func netHTTPServes(raw []byte) []served {
	var got []served
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if body, err := io.ReadAll(r.Body); err == nil {
			got = append(got, snapshot(r, body))
		}
	})}
	conn := &memConn{rd: bytes.NewReader(raw), closed: make(chan struct{})}
	ln := &chanListener{conns: make(chan net.Conn, 1), done: make(chan struct{})}
	ln.conns <- conn
	go srv.Serve(ln)
	<-conn.closed // the server is done with it; its handler has returned
	srv.Close()
	return got
}

// memConn is a client connection that sends what rd holds and then ends.
type memConn struct {
	rd     *bytes.Reader
	once   sync.Once
	closed chan struct{}
}

func (c *memConn) Read(p []byte) (int, error)       { return c.rd.Read(p) }
func (c *memConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *memConn) Close() error                     { c.once.Do(func() { close(c.closed) }); return nil }
func (c *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080} }
func (c *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000} }
func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

// fastServes reads raw as the fast path reads the requests that follow the first on a
// connection, until it hands the connection back or gives up on it.
func fastServes(p *Proxy, raw []byte) []served {
	br := bufio.NewReaderSize(bytes.NewReader(raw), fastReadBuf)
	fc := &fastConn{p: p, br: br, hdr: http.Header{}, req: &http.Request{Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}}
	fc.body.br, fc.body.fc = br, fc
	fc.req.Header = fc.hdr
	var got []served
	for {
		br.Peek(fastReadBuf) // all there is: raw is in memory
		buf, _ := br.Peek(br.Buffered())
		head, _ := headOf(buf)
		if head == nil || !fc.parse(string(head)) {
			return got // net/http's from here on, or nothing more to read
		}
		br.Discard(len(head))
		body, err := io.ReadAll(fc.req.Body)
		if err != nil {
			return got // a 400, and the connection closes
		}
		got = append(got, snapshot(fc.req, body))
		if fc.req.Close {
			return got
		}
	}
}

// fuzzRoutes knows every function: the fast path serves any /function/NAME.
type fuzzRoutes struct{ routes }

func FuzzRequestHead(f *testing.F) {
	for _, tc := range requestFraming {
		f.Add("POST /function/fn/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" + tc.raw)
	}
	f.Add("GET /function/fn/a?q=1 HTTP/1.1\r\nHost: h\r\n\r\nGET /function/fn/b HTTP/1.1\r\nHost: h:80\r\nConnection: close\r\n\r\n")
	f.Add("POST /function/fn/%2F HTTP/1.1\r\nHost: [::1]:8080\r\nContent-Length: 5\r\nX-A: 1\r\nX-a: 2\r\n\r\nhello")
	f.Add("PUT /function/fn HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc")
	f.Add("GET /function/fn HTTP/1.1\r\nHost: a@b\r\n\r\n")
	f.Add("DELETE /function/fn/x#frag HTTP/1.1\r\nHost: h\r\nX: a\tb\xff\r\n\r\n")
	f.Add("GET /function/fn/x HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Close\r\n\r\n")
	p := New(Options{Backends: routes{}, MaxBodyBytes: 1 << 20, HoldTimeout: time.Second})
	f.Fuzz(func(t *testing.T, raw string) {
		fast := fastServes(p, []byte(raw))
		if len(fast) == 0 {
			return
		}
		ref := netHTTPServes([]byte(raw))
		for i, got := range fast {
			if i >= len(ref) {
				t.Fatalf("request %d: the fast path served %+v, net/http's server did not serve it", i, got)
			}
			if !reflect.DeepEqual(got, ref[i]) {
				t.Fatalf("request %d:\nfast path %+v\nnet/http  %+v", i, got, ref[i])
			}
		}
	})
}

// relayed is what the gateway makes of a replica's response, and net/http's client.
type relayed struct {
	Status int
	Header http.Header
	Body   string
	Rest   string // what follows the response
}

func FuzzResponseHead(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: 1\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n\r\n",
		"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nX: y\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n2\r\nok\r\n0\r\nX-Sum: 1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n2;x\r\nok\r\n0\r\n\r\n",
		"HTTP/1.1 404 Not Found\nConnection: close, X-Hop\nX-Hop: 1\nContent-Type: text/plain\n\nnot found",
		"HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\nEtag: \"x\"\r\n\r\n",
		"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 1\r\n\r\nx",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	p := New(Options{Backends: routes{}, MaxBodyBytes: 1 << 20, HoldTimeout: time.Second})
	f.Fuzz(func(t *testing.T, raw string, head bool) {
		method := http.MethodGet
		if head {
			method = http.MethodHead
		}
		ours, reuse, ok := gatewayReads(p, method, raw)
		if !ok {
			return
		}
		for k, vs := range ours.Header {
			switch k {
			case "Connection", "Keep-Alive", "Proxy-Connection", "Te", "Transfer-Encoding", "Upgrade":
				t.Fatalf("hop-by-hop field %s relayed", k)
			}
			for _, v := range vs {
				if !validToken(strings.TrimPrefix(k, http.TrailerPrefix)) || !validValue(v) {
					t.Fatalf("field %q: %q relayed", k, v)
				}
			}
		}
		if cl := ours.Header["Content-Length"]; len(cl) > 0 && method != http.MethodHead && ours.Status != 204 && ours.Status != 304 &&
			cl[0] != fmt.Sprint(len(ours.Body)) {
			t.Fatalf("Content-Length %s relayed with a body of %d bytes", cl[0], len(ours.Body))
		}
		ref, err := netHTTPReads(method, raw)
		if err != nil {
			t.Fatalf("the gateway relayed %+v; net/http's client refuses it: %v", ours, err)
		}
		if ours.Status != ref.Status || ours.Body != ref.Body {
			t.Fatalf("gateway %d %q, net/http %d %q", ours.Status, ours.Body, ref.Status, ref.Body)
		}
		for k, vs := range ours.Header {
			if want := ref.Header[k]; k != "Content-Length" && k != "Trailer" && !strings.HasPrefix(k, http.TrailerPrefix) && !slices.Equal(vs, want) {
				t.Fatalf("field %s: gateway %q, net/http %q", k, vs, want)
			}
		}
		if reuse && ref.Rest != "" {
			t.Fatalf("the connection would be used again with %q left after the response", ref.Rest)
		}
	})
}

// gatewayReads relays raw as a replica's answer to method, as exchange does, into a
// recorder; reuse says whether the connection would carry another call.
func gatewayReads(p *Proxy, method, raw string) (got relayed, reuse, ok bool) {
	rec := httptest.NewRecorder()
	cl := &call{p: p, w: rec, r: httptest.NewRequest(method, "/function/fn/", nil)}
	u := &upstream{br: bufio.NewReaderSize(strings.NewReader(raw), readBufSize)}
	hd, _, err := cl.readHead(u, rec.Header())
	if err != nil || hd.status == http.StatusSwitchingProtocols {
		return got, false, false
	}
	rec.WriteHeader(hd.status)
	if err := cl.relayBody(u, hd, rec.Header()); err != nil {
		return got, false, false
	}
	h := rec.Result().Header
	for k, vs := range rec.Header() {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			h[k] = vs
		}
	}
	return relayed{Status: hd.status, Header: h, Body: rec.Body.String()}, !hd.close && u.br.Buffered() == 0, true
}

// netHTTPReads reads raw as net/http's client reads the answer to method: interim
// responses skipped, the body read whole.
func netHTTPReads(method, raw string) (relayed, error) {
	br := bufio.NewReader(strings.NewReader(raw))
	for {
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			return relayed{}, err
		}
		if resp.StatusCode >= 200 {
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				return relayed{}, err
			}
			rest, _ := io.ReadAll(br)
			return relayed{Status: resp.StatusCode, Header: resp.Header, Body: string(body), Rest: string(rest)}, nil
		}
	}
}
