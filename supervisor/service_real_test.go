package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"faasd/config"
	"faasd/internal/testkit"
)

// realServices starts a manager whose services keep their data under a fresh state dir.
func realServices(t *testing.T) (*Services, string, *testkit.SyncBuffer) {
	t.Helper()
	log := &testkit.SyncBuffer{}
	m := NewServices(ServiceOptions{Logger: slog.New(slog.NewTextHandler(log, nil)), Accounts: testAccounts(t)})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		m.Stop(ctx)
		if t.Failed() {
			t.Logf("services log:\n%s", log.String())
		}
	})
	return m, testkit.Dir(t), log
}

// serviceSpec is the test workload run as a service on a port of its own, ready once the
// port accepts connections. It never writes a lock file: a service sees the host's /tmp.
func serviceSpec(t *testing.T, state, name string, env map[string]string) (*config.Service, string) {
	t.Helper()
	addr := testkit.FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	e := map[string]string{"PORT": port, "NO_LOCK": "1"}
	for k, v := range env {
		e[k] = v
	}
	s := &config.Service{
		Name: name, Command: []string{filepath.Join(testkit.Bin(t), "workload")}, Workdir: "/", Env: e,
		DataDir: filepath.Join(state, "services", name), ReadyTCP: addr,
		ReadyTimeout: 10 * time.Second, StopGrace: 2 * time.Second,
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	return s, addr
}

func waitService(t *testing.T, m *Services, name, what string, cond func(ServiceStatus) bool) ServiceStatus {
	t.Helper()
	return waitState(t, m.Status, name, what, cond)
}

func serviceInfo(t *testing.T, addr string) testkit.Info {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var info testkit.Info
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		t.Fatal(err)
	}
	return info
}

func TestServiceInitRunsOnceInAFreshDataDir(t *testing.T) {
	m, state, _ := realServices(t)
	spec, addr := serviceSpec(t, state, "db", nil)
	spec.Init = []string{"sh", "-c", `echo "init as $(id -un)" >> "$DATA_DIR/init.log"`}
	m.Apply(map[string]*config.Service{"db": spec})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := m.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	info := serviceInfo(t, addr)
	if info.Home != spec.DataDir {
		t.Errorf("HOME = %q, want the data dir %q", info.Home, spec.DataDir)
	}
	if os.Geteuid() == 0 {
		// An account of its own by default, which owns the data dir.
		if !config.DefaultUserRange.Contains(uint32(info.UID)) {
			t.Errorf("service runs as uid %d, want one of its own from %v", info.UID, config.DefaultUserRange)
		}
		fi, err := os.Stat(spec.DataDir)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if int(st.Uid) != info.UID || int(st.Gid) != info.UID || fi.Mode().Perm() != 0o700 {
			t.Errorf("data dir owned by %d:%d with mode %v, want the service's account %d and 0700", st.Uid, st.Gid, fi.Mode().Perm(), info.UID)
		}
	}
	// Stopped and started again over the same data dir: no second init.
	stopCtx, stopCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer stopCancel()
	if err := m.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
	m2, _, _ := realServices(t)
	m2.Apply(map[string]*config.Service{"db": spec})
	if err := m2.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(spec.DataDir, "init.log"))
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(string(got)), "\n"); len(lines) != 1 {
		t.Fatalf("init ran %d times: %q", len(lines), got)
	}
}

func TestInterruptedInitStartsOverInAnEmptyDataDir(t *testing.T) {
	m, state, log := realServices(t)
	spec, _ := serviceSpec(t, state, "db", nil)
	spec.Init = []string{"sh", "-c", `found=$(ls -A "$DATA_DIR"); echo "$found" > "$DATA_DIR/seen"`}
	// What a daemon that died during init leaves behind.
	if err := os.MkdirAll(spec.DataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(spec.DataDir, "half-written"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(initMarker(spec), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	m.Apply(map[string]*config.Service{"db": spec})
	waitService(t, m, "db", "ready", func(st ServiceStatus) bool { return st.State == "ready" })
	seen, err := os.ReadFile(filepath.Join(spec.DataDir, "seen"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(seen)) != "" {
		t.Errorf("init found %q in the data dir, want it empty", seen)
	}
	if _, err := os.Stat(initMarker(spec)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("init marker still there after init: %v", err)
	}
	if !strings.Contains(log.String(), "an earlier init did not finish") {
		t.Error("no warning about the unfinished init")
	}
}

func TestFailedInitFailsTheStartAndWaitReadySaysSo(t *testing.T) {
	m, state, _ := realServices(t)
	spec, _ := serviceSpec(t, state, "db", nil)
	spec.Init = []string{"sh", "-c", "echo cannot initialise >&2; exit 4"}
	m.Apply(map[string]*config.Service{"db": spec})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	err := m.WaitReady(ctx)
	if err == nil || !strings.Contains(err.Error(), "service db did not become ready: init: exit status 4") {
		t.Fatalf("WaitReady = %v", err)
	}
	logs, _ := m.Logs("db")
	lines, _, _ := logs.Read(0)
	found := false
	for _, ln := range lines {
		found = found || (ln.Text == "cannot initialise" && ln.Stream == "stderr" && ln.Replica == "init")
	}
	if !found {
		t.Errorf("init's output is not in the service's logs: %+v", lines)
	}
}

func TestCrashingServiceBacksOffExponentially(t *testing.T) {
	m, state, log := realServices(t)
	spec, _ := serviceSpec(t, state, "db", map[string]string{"EXIT_AT_START": "1"})
	m.Apply(map[string]*config.Service{"db": spec})
	st := waitService(t, m, "db", "4 failures", func(st ServiceStatus) bool { return st.Failures >= 4 })
	if st.State != "failing" || !strings.Contains(st.LastError, "exit status 1") {
		t.Fatalf("status %+v", st)
	}
	checkRestartDelays(t, log.String(), "service failed")
}

func TestServiceThatExitsIsRestarted(t *testing.T) {
	m, state, _ := realServices(t)
	spec, addr := serviceSpec(t, state, "db", nil)
	m.Apply(map[string]*config.Service{"db": spec})
	first := waitService(t, m, "db", "ready", func(st ServiceStatus) bool { return st.State == "ready" })
	changed := m.Changed()
	http.Get("http://" + addr + "/crash")
	<-changed // no longer ready: a function gate hears of it
	st := waitService(t, m, "db", "ready again", func(st ServiceStatus) bool { return st.State == "ready" && st.PID != first.PID })
	if st.Restarts != 1 || st.Failures != 1 || !strings.Contains(st.LastError, "exit status 3") {
		t.Errorf("after one crash: %+v", st)
	}
	if syscall.Kill(first.PID, 0) == nil {
		t.Errorf("the crashed process %d still exists", first.PID)
	}
}

func TestServiceNotReadyInTimeIsKilledAndRetried(t *testing.T) {
	m, state, _ := realServices(t)
	spec, _ := serviceSpec(t, state, "db", nil)
	spec.ReadyTCP = testkit.FreeAddr(t) // nobody will listen there
	spec.ReadyTimeout = 300 * time.Millisecond
	m.Apply(map[string]*config.Service{"db": spec})
	st := waitService(t, m, "db", "a failure", func(st ServiceStatus) bool { return st.Failures >= 1 })
	if !strings.Contains(st.LastError, "not ready within ready_timeout (300ms)") {
		t.Fatalf("last error %q", st.LastError)
	}
}

func TestReadyCommandDecidesReadiness(t *testing.T) {
	m, state, _ := realServices(t)
	spec, _ := serviceSpec(t, state, "db", nil)
	flag := filepath.Join(spec.DataDir, "up")
	spec.ReadyTCP = ""
	spec.ReadyCommand = []string{"test", "-f", flag}
	m.Apply(map[string]*config.Service{"db": spec})
	waitService(t, m, "db", "started", func(st ServiceStatus) bool { return st.PID > 0 })
	if m.Ready("db") {
		t.Fatal("ready before the ready command succeeded")
	}
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitService(t, m, "db", "ready", func(st ServiceStatus) bool { return st.State == "ready" })
}

func TestServiceStopEscalatesToKillAfterGrace(t *testing.T) {
	m, state, _ := realServices(t)
	spec, _ := serviceSpec(t, state, "db", map[string]string{"IGNORE_TERM": "1"})
	spec.StopGrace = 300 * time.Millisecond
	m.Apply(map[string]*config.Service{"db": spec})
	st := waitService(t, m, "db", "ready", func(st ServiceStatus) bool { return st.State == "ready" })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if syscall.Kill(st.PID, 0) == nil {
		t.Fatalf("service %d survived the stop", st.PID)
	}
	if len(testkit.Zombies(os.Getpid())) > 0 {
		t.Fatal("unreaped service processes")
	}
}

func TestChangedServiceRestartsWithTheNewSpecAndRemovedOneStops(t *testing.T) {
	m, state, _ := realServices(t)
	spec, addr := serviceSpec(t, state, "db", map[string]string{"VERSION": "1"})
	other, _ := serviceSpec(t, state, "cache", nil)
	m.Apply(map[string]*config.Service{"db": spec, "cache": other})
	first := waitService(t, m, "db", "ready", func(st ServiceStatus) bool { return st.State == "ready" })
	gone := waitService(t, m, "cache", "ready", func(st ServiceStatus) bool { return st.State == "ready" })
	next := *spec
	next.Env = map[string]string{"VERSION": "2", "PORT": spec.Env["PORT"], "NO_LOCK": "1"}
	m.Apply(map[string]*config.Service{"db": &next})
	waitService(t, m, "db", "ready with the new spec", func(st ServiceStatus) bool {
		return st.State == "ready" && st.PID != first.PID
	})
	if v := serviceInfo(t, addr).Version; v != "2" {
		t.Errorf("version %q after the change, want 2", v)
	}
	if _, ok := m.Status("cache"); ok {
		t.Error("a removed service still has a status")
	}
	testkit.WaitFor(t, 10*time.Second, "the removed service to stop", func() bool { return syscall.Kill(gone.PID, 0) != nil })
}
