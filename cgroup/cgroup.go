// Package cgroup contains the daemon's processes in control groups, v1 or v2: a group
// per replica (and per service process) under one per function, all under a root that
// belongs to one daemon instance. It starts a process in its group before the process
// runs (join-before-exec), kills everything in a group (a grandchild that called setsid
// included), sets memory, CPU and pids limits, reads usage, counts OOM kills, and at
// start removes what a killed predecessor left behind.
//
// It owns cgroupfs files and nothing else: it starts no process and knows no function
// spec. The process lifecycle asks it for a group, calls Join on its spawning thread
// right before the fork, and Kill, Wait and Remove when the process is gone.
//
// Where the daemon's groups live:
//
//	v2, systemd delegated the unit's group (Delegate=yes):  <unit group>/faasd/<key>
//	  (the daemon first moves itself into <unit group>/daemon)
//	v2 otherwise:                                            <hierarchy root>/faasd/<key>
//	v1, in every hierarchy of memory, cpu, cpuacct, pids, freezer: <own group>/faasd/<key>
//
// <key> is the first 12 hex digits of the SHA-256 of the state directory's absolute
// path, so that two daemons with different state directories on one host (parallel
// tests, two instances) never touch each other's groups. Below it: functions/NAME/ID and
// services/NAME/ID.
package cgroup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Mode is the kind of cgroup hierarchy in use.
type Mode string

// The modes: None means the daemon runs without cgroups (limits unenforced, kill by
// process group only).
const (
	None Mode = "none"
	V1   Mode = "v1"
	V2   Mode = "v2"
)

// Kind is the top-level division below the instance root.
type Kind string

// The kinds of groups.
const (
	Functions Kind = "functions"
	Services  Kind = "services"
)

// ErrUnavailable is returned for groups when the daemon runs without cgroups.
var ErrUnavailable = errors.New("cgroups are not available")

// Status says what containment the daemon has, for its log and /system/info.
type Status struct {
	Mode        Mode     `json:"mode"`
	Groups      []string `json:"groups,omitempty"`      // the instance's root group, per hierarchy
	Controllers []string `json:"controllers,omitempty"` // in use
	Limits      bool     `json:"limits"`                // memory, CPU and pids limits are enforced
	Warning     string   `json:"warning,omitempty"`     // what is missing, and why
}

// Usage is what a group's processes have used.
type Usage struct {
	CPU         time.Duration // CPU time since the group was created, removed children's included
	MemoryBytes uint64        // memory charged to the group now (page cache included)
}

// Options configure Open.
type Options struct {
	StateDir string // keys the instance's groups; holds the lock of the instance
	Logger   *slog.Logger
	// Mode forces a hierarchy: V1, V2, or None to run without cgroups. Empty picks v2
	// where the machine runs it alone, else v1, else v2, else none.
	Mode Mode
}

// hierarchy is what differs between v1 and v2. Groups are named by their path below the
// instance root ("" is the root itself).
type hierarchy interface {
	mode() Mode
	controllers() []string
	roots() []string
	create(rel string, lim Limits) error
	join(rel string, lim Limits, attr *syscall.SysProcAttr) (release func(), err error)
	procs(rel string) ([]int, error)
	kill(ctx context.Context, rel string) error
	populated(rel string) (bool, error)
	remove(rel string) error
	children(rel string) ([]string, error)
	oomKills(rel string) (uint64, error)
	usage(rel string) (Usage, error)
}

// Manager is one daemon instance's groups. Its methods are safe for concurrent use.
type Manager struct {
	h      hierarchy // nil without cgroups
	status Status
	lock   *os.File
	log    *slog.Logger
}

// Key is the name of the instance root below the daemon's group, for a state directory.
func Key(stateDir string) string {
	abs, err := filepath.Abs(stateDir)
	if err != nil {
		abs = stateDir
	}
	sum := sha256.Sum256([]byte(abs))
	return "faasd/" + hex.EncodeToString(sum[:6])
}

// Open finds the hierarchy, creates the instance's root group and empties it of what a
// previous daemon with the same state directory left behind (processes killed, groups
// removed), before anything starts. Where no hierarchy is writable it returns a Manager
// in mode None whose Status says why; it fails only when another daemon holds the state
// directory.
func Open(ctx context.Context, opts Options) (*Manager, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	lock, err := lockStateDir(opts.StateDir)
	if err != nil {
		return nil, err
	}
	m := &Manager{lock: lock, log: log}
	key := Key(opts.StateDir)
	var errs []error
	for _, mode := range candidates(opts.Mode) {
		h, warning, err := openMode(mode, key)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		m.h = h
		m.status = Status{Mode: mode, Groups: h.roots(), Controllers: h.controllers(), Warning: warning}
		break
	}
	if m.h == nil {
		m.status = Status{Mode: None, Warning: "no writable cgroup hierarchy: limits are not enforced, and a process that leaves its process group outlives its replica"}
		if len(errs) > 0 {
			m.status.Warning += " (" + errors.Join(errs...).Error() + ")"
		}
		log.Warn("running without cgroups", "why", m.status.Warning)
		return m, nil
	}
	m.status.Limits = enforcesLimits(m.status.Mode, m.status.Controllers)
	if !m.status.Limits && m.status.Warning == "" {
		m.status.Warning = "the memory, cpu and pids controllers are not all available: limits are not all enforced"
	}
	if err := m.cleanup(ctx); err != nil {
		lock.Close()
		return nil, err
	}
	log.Info("cgroups", "mode", m.status.Mode, "groups", strings.Join(m.status.Groups, " "), "controllers", strings.Join(m.status.Controllers, ","), "limits", m.status.Limits)
	if m.status.Warning != "" {
		log.Warn("cgroups: " + m.status.Warning)
	}
	return m, nil
}

func candidates(forced Mode) []Mode {
	if forced != "" {
		return []Mode{forced}
	}
	data, _ := os.ReadFile("/proc/self/mountinfo")
	if unifiedOnly(parseMountinfo(data)) {
		return []Mode{V2}
	}
	// In the hybrid layout the controllers sit on v1; its v2 mount can still kill and
	// clone into groups where v1 is not writable.
	return []Mode{V1, V2}
}

func openMode(mode Mode, key string) (hierarchy, string, error) {
	if mode == None {
		return nil, "", errors.New("cgroups turned off")
	}
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, "", err
	}
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, "", err
	}
	mounts, own := parseMountinfo(info), parseProcCgroup(self)
	if mode == V1 {
		h, err := openLegacy(mounts, own, key)
		return h, "", err
	}
	for _, m := range mounts {
		if !m.v2 {
			continue
		}
		ownDir, ok := m.dirOf(own[""])
		if !ok {
			continue
		}
		base := m.dir
		if delegated(ownDir) {
			base = ownDir
		}
		return openUnified(base, key)
	}
	return nil, "", errors.New("cgroup v2: not mounted")
}

// delegated reports whether systemd delegated the group to the daemon (Delegate=yes),
// which it marks with an extended attribute of value "1" (trusted.*, or user.* where
// the trusted namespace is not writable).
func delegated(dir string) bool {
	for _, attr := range []string{"trusted.delegate", "user.delegate"} {
		buf := make([]byte, 8)
		if n, err := unix.Getxattr(dir, attr, buf); err == nil && string(buf[:n]) == "1" {
			return true
		}
	}
	return false
}

func enforcesLimits(mode Mode, ctrls []string) bool {
	for _, c := range []string{"memory", "cpu", "pids"} {
		if !slices.Contains(ctrls, c) {
			return false
		}
	}
	return mode != None
}

// lockStateDir keeps a second daemon off the same state directory: its start-up
// cleanup would kill the first one's replicas.
func lockStateDir(stateDir string) (*os.File, error) {
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	path := filepath.Join(stateDir, "cgroup.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock state dir: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("state dir %s is in use by another faasd (%s is locked)", stateDir, path)
		}
		return nil, fmt.Errorf("lock state dir: %w", err)
	}
	return f, nil
}

// Status says what containment there is.
func (m *Manager) Status() Status { return m.status }

// Enabled reports whether processes get groups.
func (m *Manager) Enabled() bool { return m.h != nil }

// NewGroup creates the group of one process of a function or service, with its limits.
// An empty group of that name is reused; a populated one is an error.
func (m *Manager) NewGroup(kind Kind, name, instance string, lim Limits) (*Group, error) {
	if m.h == nil {
		return nil, ErrUnavailable
	}
	for _, part := range []string{string(kind), name, instance} {
		if part == "" || part == "." || part == ".." || strings.ContainsAny(part, "/\x00") {
			return nil, fmt.Errorf("cgroup name %q: not a single path element", part)
		}
	}
	rel := path.Join(string(kind), name, instance)
	if err := m.h.create(rel, lim); err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", rel, err)
	}
	if busy, err := m.h.populated(rel); err != nil || busy {
		return nil, fmt.Errorf("cgroup %s: already has processes", rel)
	}
	return &Group{h: m.h, rel: rel, limits: lim}, nil
}

// Usage reads the usage of a function or service, summed over its groups, removed ones
// included for CPU. Two small file reads: cheap enough for every metrics scrape.
func (m *Manager) Usage(kind Kind, name string) (Usage, error) {
	if m.h == nil {
		return Usage{}, ErrUnavailable
	}
	return m.h.usage(path.Join(string(kind), name))
}

// Forget kills whatever is left of a function or service and removes its groups, once
// the function or service itself is gone.
func (m *Manager) Forget(ctx context.Context, kind Kind, name string) error {
	if m.h == nil {
		return nil
	}
	_, err := m.removeTree(ctx, path.Join(string(kind), name))
	return err
}

// Close kills everything left in the instance's groups, removes them, and releases the
// state directory.
func (m *Manager) Close(ctx context.Context) error {
	defer m.lock.Close()
	if m.h == nil {
		return nil
	}
	if _, err := m.removeTree(ctx, ""); err != nil {
		return err
	}
	// The parent "faasd" group is shared with other instances: removed only if empty.
	for _, root := range m.h.roots() {
		_ = os.Remove(filepath.Dir(root))
	}
	return nil
}

// cleanup empties the instance root of a previous run's groups and processes.
func (m *Manager) cleanup(ctx context.Context) error {
	names, err := m.h.children("")
	if err != nil || len(names) == 0 {
		return err
	}
	killed := 0
	for _, n := range names {
		k, err := m.removeTree(ctx, n)
		killed += k
		if err != nil {
			return fmt.Errorf("remove what a previous faasd left: %w", err)
		}
	}
	m.log.Warn("removed the groups a previous faasd left behind", "processes_killed", killed)
	return nil
}

// removeTree kills and removes a group and every group below it, deepest first. The
// root itself ("") stays unless it is removed by Close's caller.
func (m *Manager) removeTree(ctx context.Context, rel string) (killed int, err error) {
	children, err := m.h.children(rel)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, err
	}
	for _, c := range children {
		k, err := m.removeTree(ctx, path.Join(rel, c))
		killed += k
		if err != nil {
			return killed, err
		}
	}
	pids, _ := m.h.procs(rel)
	killed += len(pids)
	g := &Group{h: m.h, rel: rel}
	if err := g.Kill(ctx); err != nil {
		return killed, err
	}
	if err := g.Wait(ctx); err != nil {
		return killed, err
	}
	if rel == "" {
		return killed, m.removeRoot()
	}
	return killed, m.h.remove(rel)
}

func (m *Manager) removeRoot() error {
	var errs []error
	for _, r := range m.h.roots() {
		errs = append(errs, rmdir(r))
	}
	return errors.Join(errs...)
}

// Group is the group of one process tree: a replica, or a service's process.
type Group struct {
	h      hierarchy
	rel    string
	limits Limits
	// mu keeps Kill from freezing a v1 group while the spawning thread visits it.
	mu sync.Mutex
}

// Name is the group's path below the instance root, for logs.
func (g *Group) Name() string { return g.rel }

// Limits are the limits the group was created with.
func (g *Group) Limits() Limits { return g.limits }

// Join prepares the next fork of the calling thread so that the child starts in the
// group, and returns release, to be called as soon as the fork has happened (Start
// returned), whether it succeeded or not. Call it on the spawning goroutine, locked to
// its OS thread, with the SysProcAttr of the exec.Cmd about to start.
//
// On v2 it sets attr's CgroupFD (clone3 with CLONE_INTO_CGROUP); on v1 it moves the
// thread itself into the group, and release moves it back.
func (g *Group) Join(attr *syscall.SysProcAttr) (release func(), err error) {
	g.mu.Lock()
	rel, err := g.h.join(g.rel, g.limits, attr)
	if err != nil {
		g.mu.Unlock()
		return nil, fmt.Errorf("join cgroup %s: %w", g.rel, err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			rel()
			g.mu.Unlock()
		})
	}, nil
}

// Pids lists the processes in the group.
func (g *Group) Pids() ([]int, error) { return g.h.procs(g.rel) }

// Signal sends sig to every process in the group, such as SIGTERM before a grace period.
func (g *Group) Signal(sig syscall.Signal) error {
	pids, err := g.h.procs(g.rel)
	for _, p := range pids {
		_ = syscall.Kill(p, sig)
	}
	return err
}

// Kill SIGKILLs every process in the group and below it, including those that left the
// replica's process group or session.
func (g *Group) Kill(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.h.kill(ctx, g.rel); err != nil {
		return fmt.Errorf("kill cgroup %s: %w", g.rel, err)
	}
	return nil
}

// Wait returns once no process is left in the group. The lifecycle reaps its own child;
// a killed grandchild is reaped by the process that inherited it.
func (g *Group) Wait(ctx context.Context) error {
	return poll(ctx, "wait for cgroup "+g.rel+" to empty", func() (bool, error) {
		busy, err := g.h.populated(g.rel)
		if errors.Is(err, os.ErrNotExist) {
			return true, nil
		}
		return !busy, err
	})
}

// Remove kills what is left in the group, waits for it to empty and removes it.
func (g *Group) Remove(ctx context.Context) error {
	if err := g.Kill(ctx); err != nil {
		return err
	}
	if err := g.Wait(ctx); err != nil {
		return err
	}
	return g.h.remove(g.rel)
}

// OOMKills counts the processes of the group the kernel's OOM killer killed. A replica
// that died of SIGKILL with this above zero ran out of memory.
func (g *Group) OOMKills() (uint64, error) { return g.h.oomKills(g.rel) }

// Usage reads what the group has used.
func (g *Group) Usage() (Usage, error) { return g.h.usage(g.rel) }
