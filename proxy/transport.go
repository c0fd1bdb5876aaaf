package proxy

import (
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"faasd/supervisor"
)

// transport sends a request to the endpoint its call holds. A refused connection means
// the replica died before any byte was sent, so the request goes to another replica;
// nothing else is retried, since the replica may have acted on it.
//
// Each replica gets a connection pool of its own, closed when the replica leaves: an idle
// keep-alive connection must not keep a leaving replica from stopping.
type transport struct {
	p     *Proxy
	pools sync.Map // *supervisor.Endpoint → *http.Transport
}

func newTransport(p *Proxy) *transport {
	return &transport{p: p}
}

var dialer = &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}

// pool returns the connection pool of an endpoint, creating it on first use.
func (t *transport) pool(ep *supervisor.Endpoint) *http.Transport {
	if tr, ok := t.pools.Load(ep); ok {
		return tr.(*http.Transport)
	}
	tr := &http.Transport{
		DialContext:         dialer.DialContext,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	actual, loaded := t.pools.LoadOrStore(ep, tr)
	if !loaded {
		go func() {
			<-ep.Leaving()
			tr.CloseIdleConnections()
			// Connections of requests still in flight go idle when they finish.
			<-ep.Drained()
			tr.CloseIdleConnections()
			t.pools.Delete(ep)
		}()
	}
	return actual.(*http.Transport)
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	cl := req.Context().Value(callKey{}).(*call)
	var tried []*supervisor.Endpoint
	for {
		req.URL.Host = cl.ep.Addr
		resp, err := t.pool(cl.ep).RoundTrip(req)
		if err == nil {
			resp.Body = releaseOnClose(resp.Body, cl.ep.Release)
			return resp, nil
		}
		cl.ep.Release()
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return nil, err
		}
		tried = append(tried, cl.ep)
		ep, waited, aerr := t.p.acquire(req.Context(), cl.route, cl.c, tried)
		if aerr != nil {
			return nil, errors.Join(err, aerr)
		}
		cl.ep = ep
		cl.waited += waited
	}
}

// releaseOnClose ends the in-flight count of a replica when the response body is closed,
// so that a drain waits for streamed responses to finish. Switching-protocol bodies stay
// writable for WebSockets.
func releaseOnClose(body io.ReadCloser, release func()) io.ReadCloser {
	once := &sync.Once{}
	if rwc, ok := body.(io.ReadWriteCloser); ok {
		return &releasingRWC{ReadWriteCloser: rwc, once: once, release: release}
	}
	return &releasingBody{ReadCloser: body, once: once, release: release}
}

type releasingBody struct {
	io.ReadCloser
	once    *sync.Once
	release func()
}

func (b *releasingBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.release)
	return err
}

type releasingRWC struct {
	io.ReadWriteCloser
	once    *sync.Once
	release func()
}

func (b *releasingRWC) Close() error {
	err := b.ReadWriteCloser.Close()
	b.once.Do(b.release)
	return err
}

var bufferPool = &pool{p: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}

type pool struct{ p sync.Pool }

func (p *pool) Get() []byte  { return *(p.p.Get().(*[]byte)) }
func (p *pool) Put(b []byte) { p.p.Put(&b) }
