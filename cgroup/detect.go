package cgroup

import (
	"bufio"
	"bytes"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// The v1 controllers the daemon uses: memory and cpu for limits, cpuacct for CPU usage,
// pids against fork bombs, freezer for a kill-all that a forking process cannot outrun.
var v1Controllers = []string{"memory", "cpu", "cpuacct", "pids", "freezer"}

// The v2 controllers the daemon uses: memory and pids enabled down to every replica's
// group, cpu down to those with a CPU limit (unified.enableCPU). cpu.stat's usage and
// cgroup.kill need none.
var v2Controllers = []string{"memory", "cpu", "pids"}

// mount is one cgroup file system, as /proc/self/mountinfo describes it.
type mount struct {
	dir         string   // where it is mounted
	root        string   // the hierarchy's path that is mounted there ("/" but in containers)
	v2          bool     // cgroup2
	controllers []string // v1: the controllers bound to it (memory; cpu,cpuacct; ...)
}

// parseMountinfo finds the cgroup file systems among the mounts.
func parseMountinfo(data []byte) []mount {
	var out []mount
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		// 35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 3 {
			continue
		}
		m := mount{root: unescape(f[3]), dir: unescape(f[4])}
		switch g[0] {
		case "cgroup2":
			m.v2 = true
		case "cgroup":
			for opt := range strings.SplitSeq(g[2], ",") {
				if slices.Contains(v1Controllers, opt) {
					m.controllers = append(m.controllers, opt)
				}
			}
			if len(m.controllers) == 0 {
				continue // name=systemd, devices, cpuset, ...: not ours to use
			}
		default:
			continue
		}
		out = append(out, m)
	}
	return out
}

// unescape undoes mountinfo's octal escapes of spaces and the like.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var c byte
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &c); err == nil {
				b.WriteByte(c)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// membership is /proc/self/cgroup: the daemon's own group in every hierarchy, keyed by
// controller name, and "" for the v2 hierarchy.
type membership map[string]string

func parseProcCgroup(data []byte) membership {
	m := membership{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		// 4:memory:/user.slice   1:cpu,cpuacct:/   0::/system.slice/faasd.service
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			m[""] = parts[2]
			continue
		}
		for c := range strings.SplitSeq(parts[1], ",") {
			m[c] = parts[2]
		}
	}
	return m
}

// dirOf is the directory of a group given by its path in the hierarchy, as seen through
// a mount of that hierarchy. It is false when the group is outside what is mounted.
func (m mount) dirOf(path string) (string, bool) {
	rel := path
	if m.root != "/" {
		var ok bool
		if rel, ok = strings.CutPrefix(path, m.root); !ok || (rel != "" && rel[0] != '/') {
			return "", false
		}
	}
	return filepath.Join(m.dir, rel), true
}

// unifiedOnly reports whether the machine runs the v2 hierarchy alone (mounted at the
// cgroup root, with no v1 controller hierarchy beside it).
func unifiedOnly(mounts []mount) bool {
	for _, m := range mounts {
		if !m.v2 {
			return false
		}
	}
	return len(mounts) > 0
}
