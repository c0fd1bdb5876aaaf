//go:build linux

package watchdog

import (
	"syscall"
	"unsafe"
)

// pPID is idtype_t P_PID for waitid(2); package syscall does not export it.
const pPID = 1

func platformSupported() error { return nil }

// childSysProcAttr puts each child in a process group of its own, so that one kill(-pgid)
// reaches everything it started (a shell's background jobs included), and asks the kernel to
// kill it if the watchdog dies: its own group is not the watchdog's, so a supervisor killing
// the watchdog's group would otherwise leave it running. exec.Cmd copies the struct before
// use, so one value can be shared by concurrent requests.
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup sends SIGKILL to the process group led by pid.
func killGroup(pid int) error {
	return syscall.Kill(-pid, syscall.SIGKILL)
}

// waitExited blocks until the child pid has exited but leaves it unreaped (WNOWAIT). While
// the zombie exists its pid, and so its process-group id, cannot be reused, which makes the
// kill(-pgid) of stragglers that follows race-free; exec.Cmd.Wait reaps it afterwards.
func waitExited(pid int) error {
	var info [16]uint64 // siginfo_t: 128 bytes, 8-aligned
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(pid),
			uintptr(unsafe.Pointer(&info)), syscall.WEXITED|syscall.WNOWAIT, 0, 0)
		switch errno {
		case 0:
			return nil
		case syscall.EINTR: // the Go runtime's preemption signals interrupt blocking calls
			continue
		default:
			return errno
		}
	}
}
