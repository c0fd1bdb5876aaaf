package supervisor

import (
	"context"
	"log/slog"
	"sync"
	"syscall"
	"time"

	"faasd/cgroup"
	"faasd/config"
)

// cgroupTimeout bounds a kill, a removal or a forget of groups. The kernel empties a
// killed group in milliseconds; a process stuck in an uninterruptible sleep (a dead NFS
// server) can hold it longer, and must not hold up a stop for good.
const cgroupTimeout = 10 * time.Second

// containment makes the group every launch runs in: a cgroup of its own where the
// daemon manages cgroups, else a process group (group.go).
type containment struct {
	cg  *cgroup.Manager // nil, or without a hierarchy: process groups only
	log *slog.Logger
	// mu orders making groups against forgetting a unit's: a function re-added while
	// its predecessor's groups are being forgotten gets fresh ones afterwards, not
	// groups that vanish under it.
	mu sync.Mutex
}

func newContainment(cg *cgroup.Manager, log *slog.Logger) *containment {
	return &containment{cg: cg, log: log}
}

func (c *containment) enabled() bool { return c != nil && c.cg != nil && c.cg.Enabled() }

// newGroup makes the group of a launch, with its limits.
func (c *containment) newGroup(l *launch) (group, error) {
	if !c.enabled() || l.name.unit == "" {
		return newProcessGroup(), nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	g, err := c.cg.NewGroup(l.name.kind, l.name.unit, l.name.instance, cgroupLimits(l.limits))
	if err != nil {
		return nil, err
	}
	return &cgroupGroup{g: g, log: l.log}, nil
}

// forget removes the groups of a function or service that is gone, with whatever is
// left in them, unless replaced reports that a unit of the same name runs again (its
// groups are shared with it).
func (c *containment) forget(kind cgroup.Kind, name string, replaced func() bool) {
	if !c.enabled() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if replaced != nil && replaced() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), cgroupTimeout)
	defer cancel()
	if err := c.cg.Forget(ctx, kind, name); err != nil {
		c.log.Warn("remove cgroups", "group", string(kind)+"/"+name, "err", err)
	}
}

// cgroupLimits are a spec's limits as the kernel takes them.
func cgroupLimits(l config.Limits) cgroup.Limits {
	return cgroup.Limits{MemoryBytes: l.Memory.Bytes, CPUMillis: l.CPU.Millis, Pids: l.Pids}
}

// cgroupGroup is the cgroup of one process: a kill reaches everything in it, however
// far it moved from the program's process group or session.
type cgroupGroup struct {
	g   *cgroup.Group
	log *slog.Logger
}

func (c *cgroupGroup) join(attr *syscall.SysProcAttr) (func(), error) {
	// A process group as well: a terminal's Ctrl-C reaches its whole foreground process
	// group, and the replicas must hear of a stop from the daemon, after the drain.
	attr.Setpgid = true
	return c.g.Join(attr)
}

func (c *cgroupGroup) started(int) {}

func (c *cgroupGroup) signal(sig syscall.Signal) {
	if sig != syscall.SIGKILL {
		if err := c.g.Signal(sig); err != nil {
			c.log.Warn("signal cgroup", "group", c.g.Name(), "signal", sig.String(), "err", err)
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), cgroupTimeout)
	defer cancel()
	if err := c.g.Kill(ctx); err != nil {
		c.log.Warn("kill cgroup", "group", c.g.Name(), "err", err)
	}
}

func (c *cgroupGroup) waitEmpty(ctx context.Context) error { return c.g.Wait(ctx) }

// pids reads the group's members from the kernel: those that left the program's process
// group or session included.
func (c *cgroupGroup) pids() ([]int, error) { return c.g.Pids() }

func (c *cgroupGroup) oomKills() uint64 {
	n, err := c.g.OOMKills()
	if err != nil {
		c.log.Warn("read OOM kills", "group", c.g.Name(), "err", err)
	}
	return n
}

func (c *cgroupGroup) usage() (cgroup.Usage, bool) {
	u, err := c.g.Usage()
	return u, err == nil
}

func (c *cgroupGroup) remove() {
	ctx, cancel := context.WithTimeout(context.Background(), cgroupTimeout)
	defer cancel()
	if err := c.g.Remove(ctx); err != nil {
		c.log.Warn("remove cgroup", "group", c.g.Name(), "err", err)
	}
}
