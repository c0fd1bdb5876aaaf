package cgroup

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// join makes the next fork on this thread start in the group: clone3 with
// CLONE_INTO_CGROUP (Linux 5.7) puts the child there before it runs a single instruction.
func (u *unified) join(rel string, _ Limits, attr *syscall.SysProcAttr) (func(), error) {
	fd, err := unix.Open(u.dir(rel), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open cgroup %s: %w", u.dir(rel), err)
	}
	attr.UseCgroupFD, attr.CgroupFD = true, fd
	return func() { unix.Close(fd) }, nil
}
