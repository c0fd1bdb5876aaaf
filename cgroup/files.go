package cgroup

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// write sets one control file. cgroupfs files exist once their group does; the create
// flag only matters in the unit tests' fake trees, and cgroupfs refuses it for a file it
// does not know, which is the error that should surface.
func write(dir, file, value string) error {
	if err := os.WriteFile(filepath.Join(dir, file), []byte(value), 0o644); err != nil {
		return fmt.Errorf("write %q to %s: %w", value, filepath.Join(dir, file), unwrapPath(err))
	}
	return nil
}

// unwrapPath drops the *PathError around an errno, whose path the caller already names.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// readUint reads a file that holds one number ("max" reads as 0).
func readUint(dir, file string) (uint64, error) {
	data, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return 0, err
	}
	s := strings.TrimSpace(string(data))
	if s == "max" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", filepath.Join(dir, file), err)
	}
	return n, nil
}

// readKey reads the value of one key of a flat keyed file (cpu.stat, memory.events,
// memory.oom_control, cgroup.events). A missing key reads as 0.
func readKey(dir, file, key string) (uint64, error) {
	data, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == key {
			return strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, nil
}

// readPids reads cgroup.procs, leaving out the daemon itself: on v1 the spawning thread
// visits a group while it forks a replica there, and nothing may ever signal the daemon.
// A group that is not there has no processes.
func readPids(dir string) ([]int, error) {
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	self := os.Getpid()
	var pids []int
	for f := range strings.FieldsSeq(string(data)) {
		if n, err := strconv.Atoi(f); err == nil && n != self {
			pids = append(pids, n)
		}
	}
	return pids, nil
}

// subdirs lists the child groups of a group.
func subdirs(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// mkdir creates a group and reports whether it is new.
func mkdir(dir string) (bool, error) {
	err := os.Mkdir(dir, 0o755)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrExist):
		return false, nil
	default:
		return false, fmt.Errorf("create cgroup %s: %w", dir, unwrapPath(err))
	}
}

// rmdir removes an empty group; one that is already gone is fine.
func rmdir(dir string) error {
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove cgroup %s: %w", dir, unwrapPath(err))
	}
	return nil
}

// poll calls done until it reports true, an error, or ctx ends. The kernel tells a
// group's emptiness through a file that has no blocking read, so this backs off from a
// millisecond (a killed process is usually gone by then) to a few tens.
func poll(ctx context.Context, what string, done func() (bool, error)) error {
	wait := time.Millisecond
	for {
		ok, err := done()
		if err != nil || ok {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: %w", what, ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, 32*time.Millisecond)
	}
}
