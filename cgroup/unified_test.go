package cgroup

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A fake v2 tree: directories and files as the kernel would show them, so that the
// writes of a modern VM's v2-only hierarchy are checked on a machine that mounts v1.
func fakeUnified(t *testing.T, controllers string) string {
	t.Helper()
	base := t.TempDir()
	put(t, base, "cgroup.controllers", controllers)
	put(t, base, "cgroup.procs", "")
	return base
}

func put(t *testing.T, dir, file, text string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, file), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return string(data)
}

func TestUnifiedEnablesControllersDownToTheLeafAndWritesLimits(t *testing.T) {
	base := fakeUnified(t, "cpuset cpu io memory hugetlb pids rdma misc")
	u, warning, err := openUnified(base, "faasd/abc")
	if err != nil || warning != "" {
		t.Fatal(err, warning)
	}
	if got := u.controllers(); !slices.Equal(got, []string{"memory", "cpu", "pids"}) {
		t.Errorf("controllers %v", got)
	}
	// A replica without a CPU limit: memory and pids down to its group, not cpu, which
	// would schedule it as a group.
	if err := u.create("functions/plain/1", Limits{MemoryBytes: 64 << 20, Pids: 32}); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"", "faasd", "faasd/abc", "faasd/abc/functions", "faasd/abc/functions/plain"} {
		if got := get(t, filepath.Join(base, dir, "cgroup.subtree_control")); got != "+memory +pids" {
			t.Errorf("%s/cgroup.subtree_control = %q", dir, got)
		}
	}
	if _, err := os.Stat(filepath.Join(base, "faasd/abc/functions/plain/1/cpu.max")); err == nil {
		t.Error("cpu.max written without a CPU limit")
	}
	// With a CPU limit, cpu is enabled above the group, top down. (The fake's
	// subtree_control shows the last write; the kernel's adds to what is there.)
	if err := u.create("functions/hello/3", Limits{MemoryBytes: 128 << 20, CPUMillis: 500, Pids: 256}); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"", "faasd", "faasd/abc", "faasd/abc/functions", "faasd/abc/functions/hello"} {
		if got := get(t, filepath.Join(base, dir, "cgroup.subtree_control")); got != "+cpu" {
			t.Errorf("%s/cgroup.subtree_control = %q", dir, got)
		}
	}
	if got := get(t, filepath.Join(base, "faasd/abc/functions/plain/cgroup.subtree_control")); got != "+memory +pids" {
		t.Errorf("a limit elsewhere enabled cpu for the plain function's replicas: %q", got)
	}
	leaf := filepath.Join(base, "faasd/abc/functions/hello/3")
	for file, want := range map[string]string{
		"memory.max": "134217728", "memory.swap.max": "0", "cpu.max": "50000 100000", "pids.max": "256",
	} {
		if got := get(t, filepath.Join(leaf, file)); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	if _, err := os.Stat(filepath.Join(leaf, "cgroup.subtree_control")); err == nil {
		t.Error("the leaf hands controllers on: it would hold processes and children")
	}
}

// The kernel gives a new group cpu.max once its parent hands cpu on: a later replica
// with a CPU limit then writes no subtree_control on the way down.
func TestUnifiedEnablesCPUOnlyWhereTheParentDoesNot(t *testing.T) {
	base := fakeUnified(t, "cpu memory pids")
	u, _, err := openUnified(base, "faasd/abc")
	if err != nil {
		t.Fatal(err)
	}
	put(t, filepath.Join(base, "faasd/abc/functions/hello/2"), "cpu.max", "max 100000")
	for _, dir := range []string{"", "faasd", "faasd/abc"} {
		put(t, filepath.Join(base, dir), "cgroup.subtree_control", "as the kernel left it")
	}
	if err := u.create("functions/hello/2", Limits{CPUMillis: 250}); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"", "faasd", "faasd/abc"} {
		if got := get(t, filepath.Join(base, dir, "cgroup.subtree_control")); got != "as the kernel left it" {
			t.Errorf("%s/cgroup.subtree_control rewritten: %q", dir, got)
		}
	}
	if got := get(t, filepath.Join(base, "faasd/abc/functions/hello/2/cpu.max")); got != "25000 100000" {
		t.Errorf("cpu.max = %q", got)
	}
}

func TestUnifiedWithoutControllersWritesNoLimits(t *testing.T) {
	base := fakeUnified(t, "")
	u, _, err := openUnified(base, "faasd/abc")
	if err != nil {
		t.Fatal(err)
	}
	if err := u.create("functions/hello/1", Limits{MemoryBytes: 1 << 30, CPUMillis: 1000, Pids: 10}); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Join(base, "faasd/abc/functions/hello/1"))
	if len(entries) != 0 {
		t.Errorf("files written without controllers: %v", entries)
	}
}

func TestUnifiedOnlyEnablesWhatIsAvailable(t *testing.T) {
	base := fakeUnified(t, "cpu io pids")
	u, _, err := openUnified(base, "faasd/abc")
	if err != nil {
		t.Fatal(err)
	}
	if got := get(t, filepath.Join(base, "cgroup.subtree_control")); got != "+pids" {
		t.Errorf("subtree_control %q", got)
	}
	if err := u.create("services/db/1", Limits{MemoryBytes: 1 << 30, CPUMillis: 2000}); err != nil {
		t.Fatal(err)
	}
	leaf := filepath.Join(base, "faasd/abc/services/db/1")
	if _, err := os.Stat(filepath.Join(leaf, "memory.max")); err == nil {
		t.Error("memory.max written without the memory controller")
	}
	if got := get(t, filepath.Join(leaf, "cpu.max")); got != "200000 100000" {
		t.Errorf("cpu.max %q", got)
	}
}

func TestUnifiedKillUsageOOMAndEvents(t *testing.T) {
	base := fakeUnified(t, "memory cpu pids")
	u, _, err := openUnified(base, "faasd/abc")
	if err != nil {
		t.Fatal(err)
	}
	if err := u.create("functions/f/1", Limits{}); err != nil {
		t.Fatal(err)
	}
	leaf := filepath.Join(base, "faasd/abc/functions/f/1")
	put(t, leaf, "cgroup.events", "populated 1\nfrozen 0\n")
	put(t, leaf, "cpu.stat", "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n")
	put(t, leaf, "memory.current", "73400320\n")
	put(t, leaf, "memory.events", "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n")

	if err := u.kill(context.Background(), "functions/f/1"); err != nil {
		t.Fatal(err)
	}
	if got := get(t, filepath.Join(leaf, "cgroup.kill")); got != "1" {
		t.Errorf("cgroup.kill = %q", got)
	}
	if busy, err := u.populated("functions/f/1"); err != nil || !busy {
		t.Errorf("populated %v %v", busy, err)
	}
	usage, err := u.usage("functions/f/1")
	if err != nil || usage != (Usage{CPU: 2500 * time.Millisecond, MemoryBytes: 73400320}) {
		t.Errorf("usage %+v %v", usage, err)
	}
	if n, err := u.oomKills("functions/f/1"); err != nil || n != 1 {
		t.Errorf("oom kills %d %v", n, err)
	}
	put(t, leaf, "cgroup.events", "populated 0\nfrozen 0\n")
	if busy, _ := u.populated("functions/f/1"); busy {
		t.Error("populated after the events file said 0")
	}
}

func TestUnifiedJoinSetsTheCgroupFD(t *testing.T) {
	base := fakeUnified(t, "")
	u, _, _ := openUnified(base, "faasd/abc")
	if err := u.create("functions/f/1", Limits{}); err != nil {
		t.Fatal(err)
	}
	var attr syscall.SysProcAttr
	release, err := u.join("functions/f/1", Limits{}, &attr)
	if err != nil {
		t.Fatal(err)
	}
	if !attr.UseCgroupFD {
		t.Fatal("UseCgroupFD not set")
	}
	link, _ := os.Readlink("/proc/self/fd/" + itoa(int64(attr.CgroupFD)))
	if !strings.HasSuffix(link, "faasd/abc/functions/f/1") {
		t.Errorf("CgroupFD is %s", link)
	}
	release()
	if _, err := os.Readlink("/proc/self/fd/" + itoa(int64(attr.CgroupFD))); err == nil {
		t.Error("release left the fd open")
	}
}
