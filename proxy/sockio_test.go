package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (a, b *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// sockIO must read and write as net.Conn does: whole writes however large, the end of
// the stream as io.EOF, deadlines as os.ErrDeadlineExceeded.
func TestSockIOReadsAndWritesAsNetConn(t *testing.T) {
	t.Run("a write larger than the socket buffers arrives whole", func(t *testing.T) {
		a, b := tcpPair(t)
		sa, err := newSockIO(a)
		if err != nil {
			t.Fatal(err)
		}
		data := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
		done := make(chan error, 1)
		go func() {
			// In pieces that go raw, through buffers that fill and drain.
			var err error
			for off := 0; off < len(data) && err == nil; off += rawMax {
				var n int
				n, err = sa.Write(data[off : off+rawMax])
				if err == nil && n != rawMax {
					err = io.ErrShortWrite
				}
			}
			a.CloseWrite()
			done <- err
		}()
		sb, err := newSockIO(b)
		if err != nil {
			t.Fatal(err)
		}
		var got []byte
		buf := make([]byte, rawMax)
		for {
			n, err := sb.Read(buf)
			got = append(got, buf[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("read %d bytes, want the %d written", len(got), len(data))
		}
	})
	t.Run("a read past its deadline", func(t *testing.T) {
		a, _ := tcpPair(t)
		sa, err := newSockIO(a)
		if err != nil {
			t.Fatal(err)
		}
		a.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		if _, err := sa.Read(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read past the deadline: %v", err)
		}
	})
	t.Run("a write to a connection reset", func(t *testing.T) {
		a, b := tcpPair(t)
		sa, err := newSockIO(a)
		if err != nil {
			t.Fatal(err)
		}
		b.SetLinger(0)
		b.Close()
		var werr error
		for deadline := time.Now().Add(5 * time.Second); werr == nil && time.Now().Before(deadline); {
			_, werr = sa.Write([]byte("x"))
		}
		if werr == nil {
			t.Fatal("writes to a reset connection kept succeeding")
		}
	})
}
