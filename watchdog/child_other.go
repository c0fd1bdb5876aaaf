//go:build !linux

package watchdog

import (
	"errors"
	"syscall"
)

// The process-group, parent-death-signal and waitid(WNOWAIT) guarantees this package makes
// are Linux ones; rather than run without them, refuse to start.
var errUnsupported = errors.New("watchdog: classic mode needs Linux (process groups, parent-death signal, waitid)")

func platformSupported() error               { return errUnsupported }
func childSysProcAttr() *syscall.SysProcAttr { return nil }
func killGroup(pid int) error                { return errUnsupported }
func waitExited(pid int) error               { return errUnsupported }
