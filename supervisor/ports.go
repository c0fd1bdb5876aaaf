package supervisor

import (
	"fmt"
	"net"
	"sync"
)

// ports hands out free loopback ports. The kernel picks a free one; the set remembers the
// ports given to live replicas so that two replicas never get the same one even if the
// kernel offers a port again before its first owner has bound it.
type ports struct {
	mu    sync.Mutex
	inUse map[int]bool
}

func newPorts() *ports { return &ports{inUse: map[int]bool{}} }

func (p *ports) get() (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("find a free port: %w", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if !p.inUse[port] {
			p.inUse[port] = true
			return port, nil
		}
	}
	return 0, fmt.Errorf("find a free port: the kernel kept offering ports in use")
}

func (p *ports) put(port int) {
	p.mu.Lock()
	delete(p.inUse, port)
	p.mu.Unlock()
}
