package proxy

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sockIO reads and writes a TCP connection of the function path with raw system calls,
// waiting for it through Go's poller (and within its deadlines) as net.Conn does.
//
// net.Conn's Read and Write tell the scheduler that a system call may block: each wakes
// the runtime's monitor thread when it sleeps, as it does whenever the daemon has been
// idle for a moment, so that at one call at a time every call paid two or three thread
// switches for nothing (wrk -c1: 4.0 context switches per call in the daemon, against
// nginx's 2.1). Reads and writes of a non-blocking socket never block: they need none
// of that.
type sockIO struct{ rc syscall.RawConn }

func newSockIO(c *net.TCPConn) (sockIO, error) {
	rc, err := c.SyscallConn()
	return sockIO{rc}, err
}

func (s sockIO) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var err error
	if rerr := s.rc.Read(func(fd uintptr) bool {
		n, err = rawRead(fd, p)
		return err != unix.EAGAIN
	}); rerr != nil {
		return 0, rerr
	}
	return n, err
}

// rawRead is one read(2); io.EOF at the end of the stream, unix.EAGAIN when there is
// nothing to read yet.
func rawRead(fd uintptr, p []byte) (int, error) {
	for {
		r, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		switch {
		case e == unix.EINTR:
			continue
		case e == unix.EAGAIN:
			return 0, e
		case e != 0:
			return 0, os.NewSyscallError("read", e)
		case r == 0:
			return 0, io.EOF
		}
		return int(r), nil
	}
}

func (s sockIO) Write(p []byte) (int, error) {
	var n int
	var err error
	werr := s.rc.Write(func(fd uintptr) bool {
		for n < len(p) {
			r, _, e := unix.RawSyscall(unix.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[n])), uintptr(len(p)-n))
			switch {
			case e == unix.EINTR:
				continue
			case e == unix.EAGAIN:
				return false // wait until writable
			case e != 0:
				err = os.NewSyscallError("write", e)
				return true
			}
			n += int(r)
		}
		return true
	})
	if err == nil {
		err = werr
	}
	return n, err
}
