package supervisor

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"faasd/config"
	"faasd/internal/testkit"
)

// The byte order of /proc/net/tcp is the machine's; these lines are as an x86 or arm64
// kernel prints them.
func TestListenersThatReceiveConnectionsToLoopback(t *testing.T) {
	tcp := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 101 1 0000000000000000 100 0 0 10 0
   1: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 102 1 0000000000000000 100 0 0 10 0
   2: 0200007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 103 1 0000000000000000 100 0 0 10 0
   3: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 104 1 0000000000000000 100 0 0 10 0
   4: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 105 1 0000000000000000 100 0 0 10 0
`
	tcp6 := `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 201 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 202 1 0000000000000000 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 203 1 0000000000000000 100 0 0 10 0
`
	got := map[uint64]bool{}
	for _, table := range []string{tcp, tcp6} {
		if err := parseListeners(strings.NewReader(table), 0x1F90, got); err != nil {
			t.Fatal(err)
		}
	}
	// 127.0.0.1, 0.0.0.0, [::] and [::ffff:127.0.0.1] take connections to 127.0.0.1;
	// 127.0.0.2, [::1], another port and an established connection do not count.
	want := map[uint64]bool{101: true, 102: true, 201: true, 203: true}
	if len(got) != len(want) {
		t.Fatalf("inodes %v, want %v", got, want)
	}
	for k := range want {
		if !got[k] {
			t.Fatalf("inodes %v, want %v", got, want)
		}
	}
}

// The kernel's answer and /proc/net/tcp name the same listeners: on 127.0.0.1, and on
// any address of IPv6, which takes IPv4 too.
func TestKernelAndProcAgreeOnListeners(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "[::]:0"} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		port := ln.Addr().(*net.TCPAddr).Port
		fromKernel, fromProc := map[uint64]bool{}, map[uint64]bool{}
		if err := diagListeners(port, fromKernel); err != nil {
			t.Fatal(err)
		}
		for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
			f, err := os.Open(table)
			if err != nil {
				t.Fatal(err)
			}
			err = parseListeners(f, port, fromProc)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
		}
		if len(fromKernel) != 1 || len(fromProc) != 1 || fmt.Sprint(fromKernel) != fmt.Sprint(fromProc) {
			t.Errorf("%s: the kernel says %v, /proc says %v", ln.Addr(), fromKernel, fromProc)
		}
	}
}

// This machine's own table finds a listener of this process on its port, and no other
// process holds it.
func TestOwnsPortOnThisMachine(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	g := &processGroup{pgid: os.Getpid()} // this test's own group, whatever is in it
	if err := ownsPort(g, os.Getpid(), port); err != nil {
		t.Fatalf("this process's own port: %v", err)
	}
	if err := ownsPort(&processGroup{}, 1, port); err == nil || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("another group's view of the port: %v", err)
	}
}

// A local process that binds a replica's port before the replica does would receive the
// function's requests: the replica must not become ready then, and the error names the
// process that has its port.
func TestReplicaWhosePortAnotherProcessHoldsIsNeverReady(t *testing.T) {
	s, _ := realSupervisor(t)
	// A program that writes its lock file and never binds, like one that failed to bind
	// and carries on.
	f := workload(t, "fn", map[string]string{"NO_LISTEN": "1"}, nil)
	f.ReadinessTimeout = 30 * time.Second
	s.Apply(map[string]*config.Function{"fn": f})
	st := waitStatus(t, s, "fn", "a replica with a port", func(st Status) bool { return len(st.Replicas) == 1 && st.Replicas[0].Port != 0 })
	port := strconv.Itoa(st.Replicas[0].Port)
	squatter := exec.Command(filepath.Join(testkit.Bin(t), "workload"))
	squatter.Env = []string{"PORT=" + port, "NO_LOCK=1"}
	if err := squatter.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		squatter.Process.Kill()
		squatter.Wait()
	}()
	st = waitStatus(t, s, "fn", "the replica to fail", func(st Status) bool { return st.Failures >= 1 })
	want := "port " + port + " is held by pid " + strconv.Itoa(squatter.Process.Pid) + " (workload), outside the replica"
	if !strings.Contains(st.LastError, want) {
		t.Errorf("last error %q, want it to say %q", st.LastError, want)
	}
	if st.Ready != 0 {
		t.Errorf("a replica on the squatter's port became ready: %+v", st)
	}
	// The squatter still has its port: the supervisor gives the replica up, it does not
	// fight over the port.
	if err := dialTCP(context.Background(), "127.0.0.1:"+port); err != nil {
		t.Errorf("squatter: %v", err)
	}
}

// A program may leave listening to a child of its own: the child is in the replica's
// group, and the replica is ready.
func TestReplicaWhoseChildListensIsReady(t *testing.T) {
	s, _ := realSupervisor(t)
	f := workload(t, "fn", nil, nil)
	f.Command = []string{"/bin/sh", "-c", filepath.Join(testkit.Bin(t), "workload") + " & wait"}
	s.Apply(map[string]*config.Function{"fn": f})
	waitStatus(t, s, "fn", "the replica ready", func(st Status) bool { return st.Ready == 1 })
}
