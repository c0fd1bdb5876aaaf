package supervisor

import (
	"context"
	"sync"
	"syscall"

	"faasd/cgroup"
)

// A group holds a program and everything it starts, so that all of it can be signalled at
// once and nothing it started outlives it. Every process the supervisor starts, replica
// or service, runs in a group of its own, and this is the one place that decides what
// "everything it started" is: a cgroup where the daemon may manage them (cgroups.go),
// which also limits, measures and tells of OOM kills, else a POSIX process group.
//
// The starter (starter_linux.go) makes a group for each launch; its spawning thread calls
// join right before the fork and release right after it, and the starter calls started
// once the fork succeeded (remove if it failed). The lifecycle (process.go) then calls
// signal any number of times, and after the program has exited: oomKills,
// signal(SIGKILL) for its leftovers, waitEmpty, then remove. The usage sampler
// (usage.go) calls usage at any time until remove.
type group interface {
	// join makes the child of the calling thread's next fork enter the group as it is
	// created, before it execs, so that nothing it runs can start outside the group.
	// release undoes what join did to the thread; it is called as soon as the fork has
	// happened, whether it succeeded or not.
	join(attr *syscall.SysProcAttr) (release func(), err error)
	// started tells the group the pid of the program.
	started(pid int)
	// signal sends sig to every process in the group.
	signal(sig syscall.Signal)
	// waitEmpty returns once no process is left in the group, or with ctx's error.
	waitEmpty(ctx context.Context) error
	// pids lists the processes in the group now.
	pids() ([]int, error)
	// oomKills counts the group's processes that the kernel's OOM killer ended.
	oomKills() uint64
	// usage reads what the group's processes have used; false where nothing measures it.
	usage() (cgroup.Usage, bool)
	// remove releases the group; signals to it go nowhere afterwards.
	remove()
}

// processGroup is a POSIX process group led by the program: Setpgid makes the child the
// leader of a new group before exec, and a signal to -pgid reaches every member. A
// member that calls setsid leaves it, and outlives the program.
type processGroup struct {
	mu      sync.Mutex
	pgid    int // 0 until started and after remove
	removed bool
}

func newProcessGroup() *processGroup { return &processGroup{} }

func (g *processGroup) join(attr *syscall.SysProcAttr) (func(), error) {
	attr.Setpgid = true
	return func() {}, nil
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

// oomKills cannot tell an OOM kill from any other SIGKILL.
func (g *processGroup) oomKills() uint64 { return 0 }

func (g *processGroup) usage() (cgroup.Usage, bool) { return cgroup.Usage{}, false }

func (g *processGroup) remove() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.pgid, g.removed = 0, true
}
