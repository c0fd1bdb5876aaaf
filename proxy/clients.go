package proxy

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Each client address may hold only so many connections open at once
// ([gateway] max_conns_per_client): one client, a local process included, cannot take
// every connection (and file descriptor) the daemon has by opening them and sending
// nothing. IPv6 clients count by their /64, which one host usually has whole. Trusted
// proxies carry many clients' calls and are not capped.

// refusedLogEvery is how often a client that keeps being refused is logged again.
const refusedLogEvery = 10 * time.Second

// clientLimits counts the open connections of each client address.
type clientLimits struct {
	max     int // 0: no cap
	trusted trustedProxies
	log     *slog.Logger
	now     func() time.Time

	mu   sync.Mutex
	open map[netip.Addr]*clientConns
}

type clientConns struct {
	n        int
	refused  int // since the last log line
	loggedAt time.Time
}

// clientKey is what a client's connections are counted by.
func clientKey(a netip.Addr) netip.Addr {
	if a = a.Unmap(); a.Is6() {
		return netip.PrefixFrom(a, 64).Masked().Addr()
	}
	return a
}

// admit counts a new connection from a, and reports false when a is at its cap.
func (l *clientLimits) admit(a netip.Addr) bool {
	k := clientKey(a)
	l.mu.Lock()
	c := l.open[k]
	if c == nil {
		c = &clientConns{}
		l.open[k] = c
	}
	if c.n < l.max {
		c.n++
		l.mu.Unlock()
		return true
	}
	c.refused++
	open, refused, now := c.n, c.refused, l.now()
	report := now.Sub(c.loggedAt) >= refusedLogEvery
	if report {
		c.loggedAt, c.refused = now, 0
	}
	l.mu.Unlock()
	if report {
		l.log.Warn("client refused: it has as many connections open as max_conns_per_client allows",
			"client", a.String(), "open", open, "max_conns_per_client", l.max, "refused", refused)
	}
	return false
}

func (l *clientLimits) release(a netip.Addr) {
	k := clientKey(a)
	l.mu.Lock()
	defer l.mu.Unlock()
	if c := l.open[k]; c != nil {
		if c.n--; c.n <= 0 {
			delete(l.open, k)
		}
	}
}

// Listener caps the connections each client address holds on ln. Serve every listener
// of the gateway through it: the cap counts a client's connections on all of them.
func (p *Proxy) Listener(ln net.Listener) net.Listener {
	if p.clients.max <= 0 {
		return ln
	}
	return &cappedListener{Listener: ln, l: &p.clients}
}

type cappedListener struct {
	net.Listener
	l *clientLimits
}

func (cl *cappedListener) Accept() (net.Conn, error) {
	for {
		c, err := cl.Listener.Accept()
		if err != nil {
			return nil, err
		}
		tcp, ok := c.(*net.TCPConn)
		if !ok {
			return c, nil
		}
		a := tcp.RemoteAddr().(*net.TCPAddr).AddrPort().Addr()
		if cl.l.trusted.contains(a) {
			return c, nil
		}
		if cl.l.admit(a) {
			return &clientConn{TCPConn: tcp, release: func() { cl.l.release(a) }}, nil
		}
		refuse(c)
	}
}

// refusal is the answer to a connection over its client's cap.
var refusal = func() string {
	const body = "too many connections from this client address\n"
	return fmt.Sprintf("HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n"+
		"Content-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}()

// refuse answers a connection over its client's cap and closes it. The answer fits in
// any socket buffer: writing it does not hold up the next Accept.
func refuse(c net.Conn) {
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	io.WriteString(c, refusal)
	c.Close()
}

// clientConn is a connection that counts against its client's cap until it is closed,
// by whoever owns it by then (net/http, the fast path, a tunnel).
type clientConn struct {
	*net.TCPConn
	release func()
	once    sync.Once
}

func (c *clientConn) Close() error {
	c.once.Do(c.release)
	return c.TCPConn.Close()
}

// NetConn returns the TCP connection, for what needs its socket.
func (c *clientConn) NetConn() net.Conn { return c.TCPConn }
