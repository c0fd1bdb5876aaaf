package cgroup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// legacy is the v1 hierarchies: one tree per mounted controller (or per set of
// controllers mounted together, such as cpu,cpuacct), a directory in each per group.
type legacy struct {
	trees []tree
}

// tree is one v1 hierarchy the daemon uses.
type tree struct {
	controllers []string
	root        string // the daemon instance's group in this hierarchy
	own         string // the daemon's own group, where the spawning thread returns
	limitOnly   bool   // holds only groups with a CPU limit (see holds)
}

// openLegacy places the instance's root under the daemon's own group of every v1
// hierarchy of the controllers it uses, so that whatever contains the daemon (a
// systemd unit, a container) also contains its replicas.
func openLegacy(mounts []mount, own membership, key string) (*legacy, error) {
	l := &legacy{}
	for _, m := range mounts {
		if m.v2 {
			continue
		}
		path, ok := own[m.controllers[0]]
		if !ok {
			continue
		}
		ownDir, ok := m.dirOf(path)
		if !ok {
			return nil, fmt.Errorf("cgroup v1 %s: the daemon's group %s is outside the mount at %s", strings.Join(m.controllers, ","), path, m.dir)
		}
		t := tree{controllers: m.controllers, own: ownDir, root: filepath.Join(ownDir, key)}
		if err := os.MkdirAll(t.root, 0o755); err != nil {
			return nil, fmt.Errorf("cgroup v1 %s: %w", strings.Join(m.controllers, ","), err)
		}
		l.trees = append(l.trees, t)
	}
	if len(l.trees) == 0 {
		return nil, errors.New("cgroup v1: none of the controllers memory, cpu, cpuacct, pids, freezer is mounted")
	}
	for i := range l.trees {
		t := &l.trees[i]
		t.limitOnly = len(l.trees) > 1 && slices.Contains(t.controllers, "cpu") && !slices.Contains(t.controllers, "cpuacct")
	}
	// The freezer's tree lists members first: it is the one the kill loop freezes. A tree
	// that holds only some groups comes last, so that the first holds every group.
	rank := func(t tree) int {
		switch {
		case slices.Contains(t.controllers, "freezer"):
			return 0
		case t.limitOnly:
			return 2
		}
		return 1
	}
	slices.SortStableFunc(l.trees, func(a, b tree) int { return rank(a) - rank(b) })
	return l, nil
}

func (l *legacy) mode() Mode { return V1 }

func (l *legacy) controllers() []string {
	var out []string
	for _, t := range l.trees {
		out = append(out, t.controllers...)
	}
	slices.Sort(out)
	return out
}

func (l *legacy) roots() []string {
	var out []string
	for _, t := range l.trees {
		out = append(out, t.root)
	}
	return out
}

// dirOf returns the directory of a group in the tree of a controller.
func (l *legacy) dirOf(controller, rel string) (string, bool) {
	for _, t := range l.trees {
		if slices.Contains(t.controllers, controller) {
			return filepath.Join(t.root, rel), true
		}
	}
	return "", false
}

// holds reports whether a group with lim has a directory in tree t. The cpu controller
// schedules a group as one entity, with the weight of a single task, against everything
// else in its parent: a replica in a group of its own there serves a loaded machine's
// requests markedly slower and with a longer tail than the same program outside it. So
// a group joins a cpu tree of its own only for a CPU limit, and otherwise runs in the
// daemon's own cpu group, scheduled as the daemon's other children are. Where cpuacct
// is mounted with cpu (cpu,cpuacct), or cpu is the only tree, every group joins: usage
// is counted there, or nothing else would contain the process.
func (t tree) holds(lim Limits) bool { return lim.CPUMillis > 0 || !t.limitOnly }

// mkdirLeaf creates a group whose parents usually exist (a function's after its first
// replica): one mkdir where MkdirAll would stat its way down first, on the path of
// every cold start, in every hierarchy.
func mkdirLeaf(dir string) error {
	if _, err := mkdir(dir); !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create cgroup: %w", err)
	}
	return nil
}

func (l *legacy) create(rel string, lim Limits) error {
	for _, t := range l.trees {
		if !t.holds(lim) {
			continue
		}
		if err := mkdirLeaf(filepath.Join(t.root, rel)); err != nil {
			return err
		}
	}
	for _, s := range v1Settings(lim) {
		dir, ok := l.dirOf(s.controller, rel)
		if !ok {
			continue
		}
		if err := write(dir, s.file, s.value); err != nil && !(s.optional && errors.Is(err, fs.ErrNotExist)) {
			return err
		}
	}
	return nil
}

// join moves the calling thread into the group in every tree that holds it, so that the
// child it forks next starts there; the returned func moves the thread back. v1 places
// threads, not processes, and a forked child inherits its forking thread's groups, so
// this needs no helper process between fork and exec. The caller must be locked to its
// OS thread. Writing "0" names the writing thread, which spares the kernel its
// process-wide migration lock. While it visits, the thread counts against the group's
// pids.max; the daemon's memory stays charged to the daemon, since v1 charges a
// process's pages to the group of its main thread.
func (l *legacy) join(rel string, lim Limits, _ *syscall.SysProcAttr) (func(), error) {
	var joined []tree
	back := func() {
		for _, t := range joined {
			_ = write(t.own, "tasks", "0")
		}
	}
	for _, t := range l.trees {
		if !t.holds(lim) {
			continue
		}
		if err := write(filepath.Join(t.root, rel), "tasks", "0"); err != nil {
			back()
			return nil, err
		}
		joined = append(joined, t)
	}
	return back, nil
}

func (l *legacy) procs(rel string) ([]int, error) {
	return readPids(filepath.Join(l.trees[0].root, rel))
}

// evict moves any thread of the daemon that is still in the group back to the daemon's
// own group: a spawning thread that never called release would otherwise be frozen with
// the group (and the daemon with it, if it held a runtime lock), and keep it from being
// removed.
func (l *legacy) evict(rel string) error {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	ours := map[string]bool{}
	for _, t := range tasks {
		ours[t.Name()] = true
	}
	for _, t := range l.trees {
		data, err := os.ReadFile(filepath.Join(t.root, rel, "tasks"))
		if err != nil {
			continue
		}
		for tid := range strings.FieldsSeq(string(data)) {
			if ours[tid] {
				if err := write(t.own, "tasks", tid); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// kill freezes the group, SIGKILLs every process in it and thaws it, until it is empty:
// frozen, a process can neither fork a child the loop would miss nor leave. Without a
// freezer the loop only repeats until nothing is left.
func (l *legacy) kill(ctx context.Context, rel string) error {
	if err := l.evict(rel); err != nil {
		return err
	}
	freezer, ok := l.dirOf("freezer", rel)
	if _, err := os.Stat(freezer); !ok || err != nil {
		return killLoop(ctx, func() ([]int, error) { return l.procs(rel) }, nil)
	}
	return killLoop(ctx, func() ([]int, error) { return l.procs(rel) }, func(frozen bool) error {
		if !frozen {
			return write(freezer, "freezer.state", "THAWED")
		}
		if err := write(freezer, "freezer.state", "FROZEN"); err != nil {
			return err
		}
		// Freezing completes once every task has stopped; a task in an uninterruptible
		// sleep may hold it back, and is killed anyway: it dies once thawed.
		wait, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_ = poll(wait, "freeze", func() (bool, error) {
			state, err := os.ReadFile(filepath.Join(freezer, "freezer.state"))
			return strings.TrimSpace(string(state)) == "FROZEN", err
		})
		return nil
	})
}

func (l *legacy) populated(rel string) (bool, error) {
	pids, err := l.procs(rel)
	return len(pids) > 0, err
}

func (l *legacy) remove(rel string) error {
	if err := l.evict(rel); err != nil {
		return err
	}
	var errs []error
	for _, t := range l.trees {
		errs = append(errs, rmdir(filepath.Join(t.root, rel)))
	}
	return errors.Join(errs...)
}

// children lists the child groups found in any tree: after a crash, a group may be
// left in some trees only.
func (l *legacy) children(rel string) ([]string, error) {
	var out []string
	for _, t := range l.trees {
		names, err := subdirs(filepath.Join(t.root, rel))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		for _, n := range names {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	return out, nil
}

// oomKills reads the oom_kill counter of memory.oom_control (Linux 4.13): the group's
// processes the OOM killer killed. Unlike v2's, it does not count the children's.
func (l *legacy) oomKills(rel string) (uint64, error) {
	dir, ok := l.dirOf("memory", rel)
	if !ok {
		return 0, nil
	}
	return readKey(dir, "memory.oom_control", "oom_kill")
}

// usage reads cpuacct.usage (nanoseconds, including removed child groups) and
// memory.usage_in_bytes, both hierarchical.
func (l *legacy) usage(rel string) (Usage, error) {
	var u Usage
	if dir, ok := l.dirOf("cpuacct", rel); ok {
		ns, err := readUint(dir, "cpuacct.usage")
		if err != nil {
			return Usage{}, err
		}
		u.CPU = time.Duration(ns)
	}
	if dir, ok := l.dirOf("memory", rel); ok {
		b, err := readUint(dir, "memory.usage_in_bytes")
		if err != nil {
			return Usage{}, err
		}
		u.MemoryBytes = b
	}
	return u, nil
}

// killLoop SIGKILLs the processes list returns until it returns none. freeze, if set,
// freezes the group around each round.
func killLoop(ctx context.Context, list func() ([]int, error), freeze func(frozen bool) error) error {
	for {
		if freeze != nil {
			if err := freeze(true); err != nil {
				return err
			}
		}
		pids, err := list()
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if freeze != nil {
			if ferr := freeze(false); ferr != nil && err == nil {
				err = ferr
			}
		}
		if err != nil || len(pids) == 0 {
			return err
		}
		// Let the killed leave before the next round looks again.
		err = poll(ctx, "kill", func() (bool, error) {
			now, err := list()
			return err != nil || len(now) == 0 || !slices.Equal(now, pids), nil
		})
		if err != nil {
			return fmt.Errorf("processes %v survive SIGKILL: %w", pids, err)
		}
	}
}
