package proxy

import (
	"bufio"
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"faasd/supervisor"
)

// transport keeps the keep-alive connections to replicas: one pool per replica, closed
// when the replica leaves, since an idle keep-alive connection would keep a
// single-threaded server from ever seeing its SIGTERM.
//
// A connection is owned by the goroutine serving a request from get to put; no reader or
// writer goroutine sits behind it. That is where net/http's client spends most of its
// time on a small request (two goroutines and their hand-offs per connection), and why
// the gateway has a client of its own.
type transport struct {
	pools sync.Map // *supervisor.Endpoint → *connPool
}

const (
	// maxIdlePerReplica bounds the connections kept open to one replica.
	maxIdlePerReplica = 1024
	// idleTimeout closes connections nobody used for this long.
	idleTimeout = 90 * time.Second
	// probeAfter: a connection idle for longer is checked before reuse, since servers
	// close idle keep-alive connections (Node.js after 5 s, Puma after 20 s). Busy
	// connections skip the check, which costs a system call.
	probeAfter = 50 * time.Millisecond
	// readBufSize holds a usual response head and a small body in one read.
	readBufSize = 16 << 10
	// writeBufSize holds a usual request head and an inline body in one write.
	writeBufSize = 8 << 10
)

var dialer = &net.Dialer{KeepAlive: 30 * time.Second}

// upstream is one HTTP/1.1 connection to a replica.
type upstream struct {
	conn     *net.TCPConn
	sock     *sockIO
	br       *bufio.Reader
	bw       *bufio.Writer
	pool     *connPool
	idleAt   time.Time
	deadline time.Time          // what conn's deadline is set to
	reused   bool               // served a request before this one
	broken   bool               // aborted by the goroutine serving the call: never reused
	abortFn  func()             // abort, bound once rather than on every call
	sendFn   func(uintptr) bool // sendThenRead, bound once
	scratch  []byte             // response header values, before they become one string

	sendPending bool  // the request waits in bw for the next read (send)
	sendErr     error // writing it failed: no answer will come
}

// setDeadline bounds every read and write on the connection; the zero time clears it.
// Deadlines are rounded up to deadlineStep, so that back-to-back calls on a connection
// mostly find the one they need already set.
func (u *upstream) setDeadline(t time.Time) {
	t = roundUp(t, deadlineStep)
	if !t.Equal(u.deadline) {
		u.deadline = t
		_ = u.conn.SetDeadline(t)
	}
}

// deadlineStep is the precision of the deadlines on connections: a timeout fires up to
// this much late. Updating a deadline costs a lock and a timer update in the runtime.
const deadlineStep = 10 * time.Millisecond

func roundUp(t time.Time, step time.Duration) time.Time {
	if t.IsZero() {
		return t
	}
	return t.Add(step - 1).Truncate(step)
}

// abort makes blocked reads and writes on the connection return at once. Any goroutine
// may call it; the connection must not be reused afterwards.
func (u *upstream) abort() { _ = u.conn.SetDeadline(aLongTimeAgo) }

var (
	aLongTimeAgo = time.Unix(1, 0)
	zeroTime     time.Time
)

// closedByPeer reports whether the replica closed an idle connection (or, against the
// protocol, wrote to it): reading would not block. The peek goes through Control, not
// Read: Read would fail on the deadline of the call the connection last served, long
// past when it has been idle a while, and a live connection would be closed and dialed
// again on every call to a function called less often than every 100 ms.
func (u *upstream) closedByPeer() bool {
	if u.br.Buffered() > 0 {
		return true
	}
	rc, err := u.conn.SyscallConn()
	if err != nil {
		return true
	}
	closed := true
	err = rc.Control(func(fd uintptr) {
		var b [1]byte
		_, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		closed = !errors.Is(err, unix.EAGAIN)
	})
	return err != nil || closed
}

// connPool holds the idle connections to one replica, most recently used last.
type connPool struct {
	addr   string
	mu     sync.Mutex
	idle   []*upstream
	closed bool
}

// pool returns the connection pool of an endpoint, creating it on first use.
func (t *transport) pool(ep *supervisor.Endpoint) *connPool {
	if cp, ok := t.pools.Load(ep); ok {
		return cp.(*connPool)
	}
	cp := &connPool{addr: ep.Addr}
	actual, loaded := t.pools.LoadOrStore(ep, cp)
	if !loaded {
		go func() {
			<-ep.Leaving()
			cp.close()
			t.pools.Delete(ep)
		}()
	}
	return actual.(*connPool)
}

// get returns an idle connection or dials a new one. A refused dial means the replica
// is gone and nothing was sent: the caller may try another. probe checks an idle
// connection before reuse however briefly it was idle: a replica killed a moment ago
// closed it, and a request that cannot be sent again would be lost on it.
func (cp *connPool) get(ctx context.Context, now, deadline time.Time, probe bool) (*upstream, error) {
	for {
		u := cp.pop()
		if u == nil {
			break
		}
		idle := now.Sub(u.idleAt)
		if idle > idleTimeout || ((probe || idle > probeAfter) && u.closedByPeer()) {
			u.conn.Close()
			continue
		}
		u.reused = true
		return u, nil
	}
	d := *dialer
	d.Deadline = deadline
	c, err := d.DialContext(ctx, "tcp", cp.addr)
	if err != nil {
		return nil, err
	}
	tc := c.(*net.TCPConn)
	sock, err := newSockIO(tc)
	if err != nil {
		c.Close()
		return nil, err
	}
	u := &upstream{conn: tc, sock: sock, bw: bufio.NewWriterSize(sock, writeBufSize), pool: cp}
	u.br = bufio.NewReaderSize(upstreamReader{u}, readBufSize)
	u.abortFn, u.sendFn = u.abort, u.sendThenRead
	return u, nil
}

// send leaves the request in u.bw to the read of its answer that follows, which writes
// it once the poller's readiness of the connection was reset, then waits for the answer
// at once. A write then a read would first try the read, which the replica cannot have
// answered yet: a system call per call for nothing. No event can be missed: a replica
// sends nothing before it gets a request, and whatever comes after it (the answer, or
// the reset of a connection it had closed) arrives after the reset.
func (u *upstream) send() {
	u.sendPending = true
}

// upstreamReader reads the connection for u.br; see send.
type upstreamReader struct{ u *upstream }

func (r upstreamReader) Read(p []byte) (int, error) {
	u := r.u
	if !u.sendPending {
		return u.sock.Read(p)
	}
	// A deadline before the request went out leaves it pending for the next read.
	n, err := u.sock.readWith(p, u.sendFn)
	if u.sendErr != nil {
		return 0, u.sendErr
	}
	return n, err
}

// sendThenRead is the poller's callback for the read that sends the request first.
func (u *upstream) sendThenRead(fd uintptr) bool {
	if u.sendPending {
		u.sendPending = false
		if err := u.bw.Flush(); err != nil {
			u.sendErr = err
			return true
		}
		return false // wait until readable
	}
	return u.sock.readOnce(fd)
}

func (cp *connPool) pop() *upstream {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	n := len(cp.idle)
	if n == 0 {
		return nil
	}
	u := cp.idle[n-1]
	cp.idle[n-1] = nil
	cp.idle = cp.idle[:n-1]
	return u
}

// put keeps a connection that finished an exchange cleanly for the next request.
func (cp *connPool) put(u *upstream, now time.Time) {
	u.idleAt = now
	cp.mu.Lock()
	if cp.closed || len(cp.idle) >= maxIdlePerReplica {
		cp.mu.Unlock()
		u.conn.Close()
		return
	}
	cp.idle = append(cp.idle, u)
	cp.mu.Unlock()
}

// close closes the idle connections and every connection put back from now on.
func (cp *connPool) close() {
	cp.mu.Lock()
	idle := cp.idle
	cp.idle, cp.closed = nil, true
	cp.mu.Unlock()
	for _, u := range idle {
		u.conn.Close()
	}
}
