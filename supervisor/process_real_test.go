package supervisor

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"faasd/cgroup"
	"faasd/internal/testkit"
)

// The process lifecycle with real processes, started as services are: in the host's
// mount namespace, from a spawning thread of their own.

func realLaunch(t *testing.T, script string, out output) (*launch, string) {
	marker := fmt.Sprintf("FAASD_TEST=%s-%d", t.Name(), os.Getpid())
	return &launch{
		argv: []string{"sh", "-c", script}, dir: "/", env: []string{"PATH=" + defaultPath, marker},
		name: groupName{kind: cgroup.Services, unit: "test", instance: "1"}, output: out,
	}, marker
}

func TestExitedProgramTakesWhatItStartedWithIt(t *testing.T) {
	procs := newProcesses(newForkStarter(""))
	out := &lineBuffer{max: 100}
	l, marker := realLaunch(t, "sleep 1000 & echo started", out)
	if err := procs.run(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	if out.String() != "started" {
		t.Fatalf("output %q", out)
	}
	// Killed with the group once sh exited; as a zombie it no longer shows its environment.
	testkit.WaitFor(t, 5*time.Second, "the program's child to die", func() bool {
		return len(testkit.ProcessesWith(marker)) == 0
	})
}

func TestStopEndsEveryProcessOfTheGroup(t *testing.T) {
	procs := newProcesses(newForkStarter(""))
	l, marker := realLaunch(t, "trap '' TERM; sleep 1000 & sleep 1000 & echo started; wait", &lineBuffer{max: 100})
	p, err := procs.start(l)
	if err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 5*time.Second, "three processes", func() bool { return len(testkit.ProcessesWith(marker)) == 3 })
	// The children die of SIGTERM; sh ignores it and gets SIGKILL after the grace.
	p.stop(200 * time.Millisecond)
	if p.err == nil || !strings.Contains(p.err.Error(), "killed") {
		t.Errorf("exit status %v, want killed", p.err)
	}
	testkit.WaitFor(t, 5*time.Second, "no process left", func() bool { return len(testkit.ProcessesWith(marker)) == 0 })
}

func TestOutputIsCapturedLineByLine(t *testing.T) {
	logs := NewLogs(10)
	out := logOutput{logs: logs, name: "fn", instance: "7", log: discard}
	l, _ := realLaunch(t, `printf 'one\r\ntwo\n'; printf 'no newline' >&2; head -c 70000 /dev/zero | tr '\0' x`, out)
	if err := newProcesses(newForkStarter("")).run(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	lines, _, _ := logs.Read(0)
	var stdout, stderr []string
	for _, ln := range lines {
		if ln.Function != "fn" || ln.Replica != "7" {
			t.Errorf("line %+v", ln)
		}
		switch ln.Stream {
		case "stdout":
			stdout = append(stdout, ln.Text)
		case "stderr":
			stderr = append(stderr, ln.Text)
		}
	}
	// An over-long line comes in pieces of 64 KiB rather than being held in memory.
	want := []string{"one", "two", strings.Repeat("x", 64<<10), strings.Repeat("x", 70000-64<<10)}
	if len(stdout) != len(want) || fmt.Sprint(stdout[:2]) != fmt.Sprint(want[:2]) || stdout[2] != want[2] || stdout[3] != want[3] {
		t.Errorf("stdout lines %d, first %q", len(stdout), stdout[:min(2, len(stdout))])
	}
	if len(stderr) != 1 || stderr[0] != "no newline" {
		t.Errorf("stderr %q", stderr)
	}
}

// ended tells of the exit at once; exited waits for the cleanup, here for the output
// that a grandchild out of the program's process group keeps open until outputGrace.
func TestEndedClosesBeforeTheCleanupAfterTheExit(t *testing.T) {
	procs := newProcesses(newForkStarter(""))
	out := &lineBuffer{max: 100}
	l, marker := realLaunch(t, "setsid sleep 1000 & echo $!", out)
	p, err := procs.start(l)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, pid := range testkit.ProcessesWith(marker) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		<-p.exited
	}()
	select {
	case <-p.ended:
	case <-time.After(10 * time.Second):
		t.Fatal("ended did not close after the exit")
	}
	select {
	case <-p.exited:
		t.Fatal("exited closed before the output was read or outputGrace was over")
	default:
	}
}
