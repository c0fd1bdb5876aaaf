package supervisor

import (
	"context"
	"sync"
	"syscall"
)

// A group holds a program and everything it starts, so that all of it can be signalled at
// once and nothing it started outlives it. Every process the supervisor starts, replica
// or service, runs in a group of its own, and this is the one place that decides what
// "everything it started" is. Today a group is a process group; a cgroup per process
// (kill-all, limits, usage, OOM) replaces it here, for replicas and services alike.
//
// The starter (starter_linux.go) makes a group for each launch, calls join before the
// fork and started once it succeeded (remove if it failed); the lifecycle (process.go)
// then calls signal any number of times, and after the program has exited:
// signal(SIGKILL) for its leftovers, waitEmpty, then remove.
type group interface {
	// join makes the child enter the group as it is created, before it execs, so that
	// nothing it runs can start outside the group.
	join(attr *syscall.SysProcAttr) error
	// started tells the group the pid of the program.
	started(pid int)
	// signal sends sig to every process in the group.
	signal(sig syscall.Signal)
	// waitEmpty returns once no process is left in the group, or with ctx's error.
	waitEmpty(ctx context.Context) error
	// pids lists the processes in the group now.
	pids() ([]int, error)
	// remove releases the group; signals to it go nowhere afterwards.
	remove()
}

// processGroup is a POSIX process group led by the program: Setpgid makes the child the
// leader of a new group before exec, and a signal to -pgid reaches every member.
type processGroup struct {
	mu      sync.Mutex
	pgid    int // 0 until started and after remove
	removed bool
}

func newProcessGroup(*launch) (group, error) { return &processGroup{}, nil }

func (g *processGroup) join(attr *syscall.SysProcAttr) error {
	attr.Setpgid = true
	return nil
}

func (g *processGroup) started(pid int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.removed {
		g.pgid = pid
	}
}

func (g *processGroup) signal(sig syscall.Signal) {
	g.mu.Lock()
	defer g.mu.Unlock()
	// Once removed, the pgid may belong to someone else: the kernel reuses the numbers.
	if g.pgid > 0 {
		_ = syscall.Kill(-g.pgid, sig)
	}
}

// waitEmpty cannot wait for a process group: its members are not our children once their
// leader is gone, so nothing tells when the last one has died. After SIGKILL none of
// them runs again, which is what a stop needs; a cgroup can tell, and waits.
func (g *processGroup) waitEmpty(context.Context) error { return nil }

// pids finds the members of the group among all processes, by their process group.
func (g *processGroup) pids() ([]int, error) {
	g.mu.Lock()
	pgid := g.pgid
	g.mu.Unlock()
	if pgid == 0 {
		return nil, nil
	}
	var pids []int
	err := eachProcess(func(pid int) bool {
		if pgrp, ok := processGroupOf(pid); ok && pgrp == pgid {
			pids = append(pids, pid)
		}
		return true
	})
	return pids, err
}

func (g *processGroup) remove() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.pgid, g.removed = 0, true
}
