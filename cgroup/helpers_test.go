package cgroup

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the programs the tests contain, chosen by helperEnv.
const helperEnv = "CGROUP_TEST_HELPER"

func TestMain(m *testing.M) {
	if h := os.Getenv(helperEnv); h != "" {
		runHelper(h)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func runHelper(name string) {
	switch name {
	case "sleep":
		sleepForever()
	case "tree":
		// A grandchild that escapes the process group and the session, the way a
		// daemonizing program does, and reports its pid.
		c := exec.Command(os.Args[0])
		c.Env = append(os.Environ(), helperEnv+"=sleep")
		c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := c.Start(); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println(c.Process.Pid)
		sleepForever()
	case "hog":
		// Touch memory until the OOM killer steps in.
		var keep [][]byte
		for range 1024 {
			b := make([]byte, 1<<20)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1
			}
			keep = append(keep, b)
		}
		fmt.Println("allocated", len(keep), "MiB")
	case "burn":
		// Use CPU and some memory, then stay.
		b := make([]byte, 16<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		// Until the process has had 300ms of CPU, however long a loaded machine takes
		// to give it that: the test asserts on CPU time, not on the clock.
		for cpuTime() < 300*time.Millisecond {
			for x := 0; x < 1e6; x++ {
				_ = x * x
			}
		}
		fmt.Println("burnt")
		runtime.KeepAlive(b)
		sleepForever()
	case "open":
		// A daemon opening its groups, from wherever it was started.
		m, err := Open(context.Background(), Options{StateDir: os.Getenv("CGROUP_TEST_STATE"), Mode: Mode(os.Getenv("CGROUP_TEST_MODE"))})
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println(strings.Join(m.Status().Groups, " "))
		if err := m.Close(context.Background()); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
	case "shim":
		// The handshake alternative to thread placement: wait until the parent has
		// moved us into the group, then exec.
		buf := make([]byte, 1)
		os.NewFile(3, "handshake").Read(buf)
		err := syscall.Exec("/bin/true", []string{"true"}, nil)
		fmt.Println(err)
		os.Exit(1)
	default:
		fmt.Println("unknown helper", name)
		os.Exit(2)
	}
}

// sleepForever blocks for good. A bare select{} would not: with no goroutine left that
// could wake it, the runtime ends the program as deadlocked (exit status 2), and a test
// would see its helper die of something other than what it tests.
func sleepForever() {
	for {
		time.Sleep(time.Hour)
	}
}

// helper returns the command of a helper program.
func helper(name string) *exec.Cmd {
	c := exec.Command(os.Args[0])
	c.Env = append(os.Environ(), helperEnv+"="+name)
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return c
}

// start starts cmd in g the way the daemon's spawning thread does: on a locked thread,
// joined right before the fork. The thread is not unlocked, so it ends with the
// goroutine whatever state it was left in. after, if set, runs on that thread once the
// child started.
func start(t *testing.T, g *Group, cmd *exec.Cmd, after ...func()) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		release, err := g.Join(cmd.SysProcAttr)
		if err != nil {
			done <- err
			return
		}
		err = cmd.Start()
		release()
		for _, f := range after {
			f()
		}
		done <- err
	}()
	if err := <-done; err != nil {
		t.Fatalf("start %v in %s: %v", cmd.Args, g.Name(), err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
}

// firstLine reads the first line a started helper prints.
func firstLine(t *testing.T, cmd *exec.Cmd) func() string {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	return func() string {
		line, _ := bufio.NewReader(out).ReadString('\n')
		return strings.TrimSpace(line)
	}
}

// alive reports whether pid runs (a zombie does not).
func alive(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || (s[i+2] != 'Z' && s[i+2] != 'X')
}

// waitFor polls cond until it holds, or fails the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := poll(ctx, what, func() (bool, error) { return cond(), nil }); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// openManager opens a manager of the given mode on a fresh state dir, or skips where
// that hierarchy cannot be written here. The manager is closed at the test's end, and
// its groups must be gone then.
func openManager(t *testing.T, mode Mode) *Manager {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("cgroups need root")
	}
	m, err := Open(context.Background(), Options{StateDir: t.TempDir(), Mode: mode})
	if err != nil {
		t.Fatal(err)
	}
	if !m.Enabled() {
		m.Close(context.Background())
		t.Skipf("cgroup %s is not writable here: %s", mode, m.Status().Warning)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
		for _, root := range m.Status().Groups {
			if _, err := os.Stat(root); err == nil {
				t.Errorf("%s survives Close", root)
			}
		}
	})
	return m
}

// cpuTime is the CPU time this process has used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
