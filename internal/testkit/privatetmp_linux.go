package testkit

import (
	"fmt"
	"os/exec"
	"runtime"

	"golang.org/x/sys/unix"
)

// PrivateTmp starts processes from one OS thread that has its own mount namespace with a
// directory bound on /tmp, so that the children see that directory as /tmp, as faasd's
// replicas see theirs, and leave the host's /tmp/.lock alone. The rest of the program keeps
// the host's mounts. It needs root. Benchmarks use it to start a program without faasd
// under the same conditions as a replica.
type PrivateTmp struct {
	reqs chan startReq
}

type startReq struct {
	cmd  *exec.Cmd
	done chan error
}

// NewPrivateTmp prepares the thread that sees dir as /tmp.
func NewPrivateTmp(dir string) (*PrivateTmp, error) {
	p := &PrivateTmp{reqs: make(chan startReq)}
	ready := make(chan error, 1)
	go func() {
		// Never unlocked: when this goroutine ends, its thread (and namespace) go too.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNS | unix.CLONE_FS); err != nil {
			ready <- fmt.Errorf("unshare: %w", err)
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			ready <- fmt.Errorf("make mounts private: %w", err)
			return
		}
		if err := unix.Mount(dir, "/tmp", "", unix.MS_BIND, ""); err != nil {
			ready <- fmt.Errorf("bind %s on /tmp: %w", dir, err)
			return
		}
		ready <- nil
		for r := range p.reqs {
			r.done <- r.cmd.Start()
		}
	}()
	if err := <-ready; err != nil {
		return nil, err
	}
	return p, nil
}

// Start starts cmd in the private namespace.
func (p *PrivateTmp) Start(cmd *exec.Cmd) error {
	done := make(chan error, 1)
	p.reqs <- startReq{cmd: cmd, done: done}
	return <-done
}

// Close ends the thread.
func (p *PrivateTmp) Close() { close(p.reqs) }
