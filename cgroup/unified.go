package cgroup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// unified is the v2 hierarchy: one tree, one directory per group.
type unified struct {
	base  string   // the group the daemon manages, above the instance root
	root  string   // the daemon instance's group
	ctrls []string // controllers enabled down to every leaf; may be none
	cpu   bool     // the cpu controller is there for CPU limits, enabled where one is set
}

// openUnified places the instance's root under base, the group the daemon may manage: a
// subtree systemd delegated, or the hierarchy's root. Controllers are enabled on the way
// down; a group may only hand them to its children while no process sits in it (the
// "no internal processes" rule), so when base is the daemon's own group, the daemon
// first moves itself into the leaf base/daemon, as systemd's delegation docs ask.
//
// The cpu controller is the exception: it schedules each group as one entity against
// its siblings, which slows a replica down markedly on a loaded machine (see
// legacy.holds), so it is enabled only on the way down to a group with a CPU limit
// (enableCPU). cpu.stat's usage is there without it.
func openUnified(base, key string) (*unified, string, error) {
	var warning string
	avail, err := os.ReadFile(filepath.Join(base, "cgroup.controllers"))
	if err != nil {
		return nil, "", fmt.Errorf("cgroup v2 at %s: %w", base, err)
	}
	u := &unified{base: base, root: filepath.Join(base, key)}
	for _, c := range v2Controllers {
		switch {
		case !slices.Contains(strings.Fields(string(avail)), c):
		case c == "cpu":
			u.cpu = true
		default:
			u.ctrls = append(u.ctrls, c)
		}
	}
	if err := enableBase(base, u.ctrls); err != nil {
		warning = fmt.Sprintf("controllers %s not enabled in %s (%v)", strings.Join(u.ctrls, ", "), base, err)
		u.ctrls, u.cpu = nil, false
	}
	dir := base
	for part := range strings.SplitSeq(key, "/") {
		dir = filepath.Join(dir, part)
		if _, err := mkdir(dir); err != nil {
			return nil, "", err
		}
		if err := enable(dir, u.ctrls); err != nil {
			return nil, "", err
		}
	}
	return u, warning, nil
}

// enableBase hands ctrls to the children of base, moving the daemon out of base first
// if it is in the way.
func enableBase(base string, ctrls []string) error {
	err := enable(base, ctrls)
	if errors.Is(err, unix.EBUSY) {
		if err = moveSelf(base); err == nil {
			err = enable(base, ctrls)
		}
	}
	return err
}

// enableCPU enables the cpu controller in every group above the group rel, so that its
// cpu.max exists. A group's children all get a controller at once: from the first CPU
// limit on, the instance's functions and services are scheduled as groups too.
func (u *unified) enableCPU(rel string) error {
	if err := enableBase(u.base, []string{"cpu"}); err != nil {
		return err
	}
	var above []string // from the leaf's parent up to base's child
	for dir := filepath.Dir(u.dir(rel)); len(dir) > len(u.base); dir = filepath.Dir(dir) {
		above = append(above, dir)
	}
	// Top down: a group can only hand on a controller its parent handed it.
	for _, dir := range slices.Backward(above) {
		if err := enable(dir, []string{"cpu"}); err != nil {
			return err
		}
	}
	return nil
}

// moveSelf moves the daemon into base/daemon, if it is in base.
func moveSelf(base string) error {
	pids, err := os.ReadFile(filepath.Join(base, "cgroup.procs"))
	if err != nil {
		return err
	}
	self := strconv.Itoa(os.Getpid())
	if !slices.Contains(strings.Fields(string(pids)), self) {
		return fmt.Errorf("other processes are in %s", base)
	}
	leaf := filepath.Join(base, "daemon")
	if _, err := mkdir(leaf); err != nil {
		return err
	}
	return write(leaf, "cgroup.procs", self)
}

func enable(dir string, ctrls []string) error {
	if len(ctrls) == 0 {
		return nil
	}
	return write(dir, "cgroup.subtree_control", "+"+strings.Join(ctrls, " +"))
}

// mkdir creates a group that will have children, and hands them the controllers.
func (u *unified) mkdir(dir string) error {
	created, err := mkdir(dir)
	if err != nil || !created {
		return err
	}
	return enable(dir, u.ctrls)
}

func (u *unified) mode() Mode            { return V2 }
func (u *unified) roots() []string       { return []string{u.root} }
func (u *unified) dir(rel string) string { return filepath.Join(u.root, rel) }

// controllers are those in use: enabled everywhere, or (cpu) where a limit needs them.
func (u *unified) controllers() []string {
	var out []string
	for _, c := range v2Controllers {
		if slices.Contains(u.ctrls, c) || (c == "cpu" && u.cpu) {
			out = append(out, c)
		}
	}
	return out
}

func (u *unified) create(rel string, lim Limits) error {
	parts := strings.Split(rel, "/")
	dir := u.root
	for _, p := range parts[:len(parts)-1] {
		dir = filepath.Join(dir, p)
		if err := u.mkdir(dir); err != nil {
			return err
		}
	}
	leaf := filepath.Join(dir, parts[len(parts)-1])
	if _, err := mkdir(leaf); err != nil {
		return err
	}
	// A group whose parent hands cpu on has cpu.max from birth: only the first group
	// with a CPU limit below a parent enables it on the way down.
	if lim.CPUMillis > 0 && u.cpu && !exists(filepath.Join(leaf, "cpu.max")) {
		if err := u.enableCPU(rel); err != nil {
			return fmt.Errorf("enable the cpu controller for a CPU limit: %w", err)
		}
	}
	inUse := u.controllers()
	for _, s := range v2Settings(lim) {
		if !slices.Contains(inUse, s.controller) {
			continue
		}
		if err := write(leaf, s.file, s.value); err != nil && !(s.optional && errors.Is(err, fs.ErrNotExist)) {
			return err
		}
	}
	return nil
}

func (u *unified) procs(rel string) ([]int, error) { return readPids(u.dir(rel)) }

// kill kills the group and every group below it at once (cgroup.kill, Linux 5.14); on
// older kernels it signals what cgroup.procs lists until nothing is left.
func (u *unified) kill(ctx context.Context, rel string) error {
	err := write(u.dir(rel), "cgroup.kill", "1")
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return killLoop(ctx, func() ([]int, error) { return u.procs(rel) }, nil)
}

func (u *unified) populated(rel string) (bool, error) {
	n, err := readKey(u.dir(rel), "cgroup.events", "populated")
	return n > 0, err
}

func (u *unified) remove(rel string) error { return rmdir(u.dir(rel)) }

func (u *unified) children(rel string) ([]string, error) { return subdirs(u.dir(rel)) }

// oomKills counts the group's processes the OOM killer killed (hierarchical, so a
// function's group sums its replicas).
func (u *unified) oomKills(rel string) (uint64, error) {
	n, err := readKey(u.dir(rel), "memory.events", "oom_kill")
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil // no memory controller here: nothing is OOM-killed for the group
	}
	return n, err
}

// usage reads two small files: cpu.stat's first line (kept without any controller, and
// including the usage of removed child groups) and memory.current.
func (u *unified) usage(rel string) (Usage, error) {
	usec, err := readKey(u.dir(rel), "cpu.stat", "usage_usec")
	if err != nil {
		return Usage{}, err
	}
	mem, err := readUint(u.dir(rel), "memory.current")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Usage{}, err
	}
	return Usage{CPU: time.Duration(usec) * time.Microsecond, MemoryBytes: mem}, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
