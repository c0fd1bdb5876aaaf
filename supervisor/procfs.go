package supervisor

import (
	"bytes"
	"os"
	"strconv"
	"strings"
)

// eachProcess calls fn with the pid of every process of the machine, as /proc lists them,
// until fn returns false.
func eachProcess(fn func(pid int) bool) error {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return err
	}
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil && !fn(pid) {
			break
		}
	}
	return nil
}

// processGroupOf returns the process group of a process, from /proc/PID/stat; false when
// it is gone.
func processGroupOf(pid int) (int, bool) {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// pid (comm) state ppid pgrp ...: comm may hold anything, so count from its end.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 3 {
		return 0, false
	}
	pgrp, err := strconv.Atoi(f[2])
	return pgrp, err == nil
}
