//go:build !linux

package cgroup

import (
	"errors"
	"syscall"
)

// join needs clone3's CLONE_INTO_CGROUP, which only Linux has; elsewhere no hierarchy
// is found in the first place.
func (u *unified) join(string, Limits, *syscall.SysProcAttr) (func(), error) {
	return nil, errors.ErrUnsupported
}
