package testkit

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// processes calls fn with the pid and /proc directory of every process until fn returns
// false.
func processes(fn func(pid int, dir string) bool) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil {
			continue
		}
		if !fn(pid, filepath.Join("/proc", e.Name())) {
			return
		}
	}
}

// ProcessesWith returns the pids of processes whose command line or environment
// contains marker.
func ProcessesWith(marker string) []int {
	var pids []int
	processes(func(pid int, dir string) bool {
		for _, f := range []string{"cmdline", "environ"} {
			if b, err := os.ReadFile(filepath.Join(dir, f)); err == nil && bytes.Contains(b, []byte(marker)) {
				pids = append(pids, pid)
				break
			}
		}
		return true
	})
	return pids
}

// Zombies returns the children of ppid that exited and were never reaped.
func Zombies(ppid int) []int {
	var pids []int
	processes(func(pid int, dir string) bool {
		b, err := os.ReadFile(filepath.Join(dir, "stat"))
		if err != nil {
			return true
		}
		// pid (comm) state ppid ...; comm may hold spaces, so parse after the last ')'.
		s := string(b)
		var state string
		var parent int
		if i := strings.LastIndexByte(s, ')'); i >= 0 {
			if _, err := fmt.Sscanf(s[i+1:], " %s %d", &state, &parent); err == nil && parent == ppid && state == "Z" {
				pids = append(pids, pid)
			}
		}
		return true
	})
	return pids
}

// ProcessesIn returns the pids of processes whose working directory is dir.
func ProcessesIn(dir string) []int {
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	var pids []int
	processes(func(pid int, proc string) bool {
		if cwd, err := os.Readlink(filepath.Join(proc, "cwd")); err == nil && cwd == dir {
			pids = append(pids, pid)
		}
		return true
	})
	return pids
}

// Alive reports whether pid runs; a zombie, dead but not yet reaped, does not.
func Alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || (s[i+2] != 'Z' && s[i+2] != 'X')
}
