package supervisor

import (
	"context"
	"net"
	"os"
	"testing"
)

// The port check runs once per replica start, after the readiness dial: side by side,
// what each costs on this machine (its /proc/net/tcp grows with its connections).
func BenchmarkReadinessPortCheck(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	g := &processGroup{pgid: os.Getpid()}
	b.Run("dial", func(b *testing.B) {
		for b.Loop() {
			if err := dialTCP(context.Background(), ln.Addr().String()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("owns", func(b *testing.B) {
		for b.Loop() {
			if err := ownsPort(g, os.Getpid(), port); err != nil {
				b.Fatal(err)
			}
		}
	})
}
