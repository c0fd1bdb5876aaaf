package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"faasd/api"
	"faasd/config"
	"faasd/internal/testkit"
)

// workload returns the TOML of a function running the test workload.
func workload(name string, extra string) string {
	return fmt.Sprintf("[functions.%s]\ncommand = [\"{{BIN}}/workload\"]\nreadiness_timeout = \"10s\"\n%s\n", name, extra)
}

func marker(t *testing.T) string {
	return fmt.Sprintf("FAASD_TEST_%d_%s", os.Getpid(), strings.NewReplacer("/", "_").Replace(t.Name()))
}

// pidsServing calls fn until it has seen n different replicas, and returns their pids.
func pidsServing(t *testing.T, d *testkit.Daemon, fn string, n int) map[int]bool {
	t.Helper()
	seen := map[int]bool{}
	testkit.WaitFor(t, 20*time.Second, fmt.Sprintf("%d replicas of %s serving", n, fn), func() bool {
		info, err := d.GetInfo(fn)
		if err == nil {
			seen[info.PID] = true
		}
		return len(seen) >= n
	})
	return seen
}

func TestTwoReplicasOfLockWritingProgramBothServe(t *testing.T) {
	d := testkit.StartDaemon(t, workload("twin", `labels = { "com.openfaas.scale.min" = "2" }`))
	pids := pidsServing(t, d, "twin", 2)
	// Each replica wrote the literal /tmp/.lock and read back its own pid from it.
	for i := 0; i < 20; i++ {
		info, err := d.GetInfo("twin")
		if err != nil {
			t.Fatal(err)
		}
		if info.LockPID != fmt.Sprint(info.PID) {
			t.Fatalf("replica %d reads lock file of %q: /tmp is not private", info.PID, info.LockPID)
		}
		if !config.DefaultUserRange.Contains(uint32(info.UID)) {
			t.Errorf("replica runs as uid %d, want an account of its own from %v", info.UID, config.DefaultUserRange)
		}
		if info.TMPDIR != "" {
			t.Errorf("TMPDIR = %q: the namespace isolation should be in use as root", info.TMPDIR)
		}
	}
	if len(pids) != 2 {
		t.Fatalf("pids = %v", pids)
	}
	// The namespaces and working directories are the replicas', never the daemon's own as
	// seen in /proc (its main thread).
	daemon := fmt.Sprintf("/proc/%d/", d.Cmd.Process.Pid)
	if cwd, _ := os.Readlink(daemon + "cwd"); cwd != d.Dir {
		t.Errorf("daemon cwd %q, want %q", cwd, d.Dir)
	}
	mine, _ := os.Readlink("/proc/self/ns/mnt")
	if ns, _ := os.Readlink(daemon + "ns/mnt"); ns != mine {
		t.Errorf("daemon mount namespace %q, want the host's %q", ns, mine)
	}
}

func TestKilledReplicaIsReplaced(t *testing.T) {
	d := testkit.StartDaemon(t, workload("victim", ""))
	first, err := d.GetInfo("victim")
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(first.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 20*time.Second, "a new replica after SIGKILL", func() bool {
		info, err := d.GetInfo("victim")
		return err == nil && info.PID != first.PID
	})
	if z := testkit.Zombies(d.Cmd.Process.Pid); len(z) > 0 {
		t.Errorf("zombies left: %v", z)
	}
}

func TestReplicaThatDeletesItsLockIsReplaced(t *testing.T) {
	d := testkit.StartDaemon(t, workload("unlocker", ""))
	first, err := d.GetInfo("unlocker")
	if err != nil {
		t.Fatal(err)
	}
	if code, body := testkit.Get(t, d.URL+"/function/unlocker/unlock"); code != 200 {
		t.Fatalf("unlock: %d %s", code, body)
	}
	// Every request succeeds during the replacement: the old replica serves until the
	// new one is ready.
	testkit.WaitFor(t, 20*time.Second, "a replacement replica", func() bool {
		info, err := d.GetInfo("unlocker")
		if err != nil {
			t.Fatalf("request failed during replacement: %v", err)
		}
		return info.PID != first.PID
	})
	testkit.WaitFor(t, 20*time.Second, "the unhealthy replica to stop", func() bool {
		return syscall.Kill(first.PID, 0) != nil
	})
}

func TestInvalidConfigIsReportedWithFileAndLine(t *testing.T) {
	bin := testkit.Bin(t)
	dir := testkit.Dir(t)
	cfg := filepath.Join(dir, "faasd.toml")
	os.WriteFile(cfg, []byte("[gateway]\nlisten = \"127.0.0.1:0\"\n\n[functions.a]\ncommand = [\"x\"]\nlables = {}\n"), 0o644)
	out, err := exec.Command(filepath.Join(bin, "faasd"), "serve", "-f", cfg).CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("exit = %v, want status 1; output:\n%s", err, out)
	}
	want := cfg + ":6: functions.a.lables: unknown key (did you mean labels?)"
	if !strings.Contains(string(out), want) {
		t.Fatalf("output %q does not contain %q", out, want)
	}
}

func TestReloadAddsRemovesAndChangesFunctionsWithoutLosingRequests(t *testing.T) {
	base := workload("keep", `env = { VERSION = "1" }`) + workload("drop", "")
	d := testkit.StartDaemon(t, base)
	pidsServing(t, d, "keep", 1)
	pidsServing(t, d, "drop", 1)

	// Load on "keep" all through the reload.
	var failures, total atomic.Int64
	var lastErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				total.Add(1)
				if _, err := d.GetInfo("keep"); err != nil {
					failures.Add(1)
					lastErr.Store(err.Error())
				}
			}
		})
	}
	d.WriteConfig(workload("keep", `env = { VERSION = "2" }`) + workload("add", ""))
	testkit.WaitFor(t, 20*time.Second, "keep to roll over to VERSION 2", func() bool {
		info, err := d.GetInfo("keep")
		return err == nil && info.Version == "2"
	})
	pidsServing(t, d, "add", 1)
	testkit.WaitFor(t, 10*time.Second, "drop to be gone", func() bool {
		code, _ := testkit.Get(t, d.URL+"/function/drop/")
		return code == http.StatusNotFound
	})
	// An invalid file is reported, in the log and by the API, and changes nothing.
	d.WriteConfig("[functions.keep]\ncomand = []\n")
	testkit.WaitFor(t, 10*time.Second, "the invalid config to be reported", func() bool {
		return strings.Contains(d.Log(), "config not reloaded")
	})
	refused := reloadError(t, d)
	if refused == nil || refused.File != d.Config || !strings.Contains(refused.Error, d.Config+":2: functions.keep.comand: unknown key (did you mean command?)") || time.Since(refused.Time) > time.Minute {
		t.Errorf("/system/info after a refused reload: %+v", refused)
	}
	// And SIGHUP reloads too; a good reload clears the refusal.
	d.WriteConfig(workload("keep", `env = { VERSION = "3" }`) + workload("add", ""))
	d.Signal(syscall.SIGHUP)
	testkit.WaitFor(t, 20*time.Second, "keep to roll over to VERSION 3", func() bool {
		info, err := d.GetInfo("keep")
		return err == nil && info.Version == "3"
	})
	if refused := reloadError(t, d); refused != nil {
		t.Errorf("/system/info after a good reload still reports %+v", refused)
	}
	close(stop)
	wg.Wait()
	if n := failures.Load(); n > 0 {
		t.Fatalf("%d of %d requests failed during reloads; last: %v", n, total.Load(), lastErr.Load())
	}
	if total.Load() < 10 {
		t.Fatalf("only %d requests ran", total.Load())
	}
}

// reloadError is the refused reload /system/info reports, if any.
func reloadError(t *testing.T, d *testkit.Daemon) *api.ReloadError {
	t.Helper()
	code, body := d.API("GET", "/system/info", "")
	var info api.Info
	if err := json.Unmarshal([]byte(body), &info); code != 200 || err != nil || info.Config == nil || info.Config.File != d.Config {
		t.Fatalf("/system/info: %d %s (%v)", code, body, err)
	}
	return info.Config.ReloadError
}

func TestNoFunctionProcessOutlivesTheDaemon(t *testing.T) {
	for _, tc := range []struct {
		name     string
		sig      syscall.Signal
		wantExit bool
	}{
		{"SIGTERM", syscall.SIGTERM, true},
		{"SIGINT", syscall.SIGINT, true},
		{"SIGKILL", syscall.SIGKILL, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := marker(t)
			d := testkit.StartDaemon(t, workload("stay", fmt.Sprintf(`env = { MARKER = %q }
labels = { "com.openfaas.scale.min" = "2" }`, m))+
				workload("stubborn", fmt.Sprintf(`env = { MARKER = %q, IGNORE_TERM = "1" }
stop_grace = "1s"`, m)))
			pidsServing(t, d, "stay", 2)
			pidsServing(t, d, "stubborn", 1)
			if n := len(testkit.ProcessesWith(m)); n != 3 {
				t.Fatalf("%d function processes before the stop, want 3", n)
			}
			d.Signal(tc.sig)
			err := d.Wait(30 * time.Second)
			if tc.wantExit && err != nil {
				t.Fatalf("daemon exit: %v, want status 0\n%s", err, d.Log())
			}
			testkit.WaitFor(t, 10*time.Second, "every function process to be gone", func() bool {
				return len(testkit.ProcessesWith(m)) == 0
			})
		})
	}
}

func TestUnprivilegedDaemonGivesEachReplicaItsOwnTmp(t *testing.T) {
	// A developer's laptop: the daemon is not root, so replicas get a user namespace.
	d := testkit.StartDaemon(t, workload("laptop", `labels = { "com.openfaas.scale.min" = "2" }`),
		testkit.Options{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}})
	pidsServing(t, d, "laptop", 2)
	for range 10 {
		info, err := d.GetInfo("laptop")
		if err != nil {
			t.Fatal(err)
		}
		if info.LockPID != fmt.Sprint(info.PID) {
			t.Fatalf("replica %d reads the lock file of %q: /tmp is shared", info.PID, info.LockPID)
		}
		if info.UID != 65534 || info.TMPDIR != "" {
			t.Fatalf("uid %d TMPDIR %q: want the daemon's uid and a private /tmp", info.UID, info.TMPDIR)
		}
	}
	if !strings.Contains(d.Log(), `isolation="user and mount namespace"`) {
		t.Errorf("daemon did not report user-namespace isolation:\n%s", d.Log())
	}
	// Nor may it write any cgroup: it says so, and runs on process groups.
	if c := containment(t, d); c.Cgroups != "none" || c.LimitsEnforced || !strings.Contains(c.Warning, "no writable cgroup hierarchy: limits are not enforced") {
		t.Errorf("/system/info containment %+v", c)
	}
	if !strings.Contains(d.Log(), `level=WARN msg="running without cgroups"`) {
		t.Errorf("no warning of running without cgroups:\n%s", d.Log())
	}
}
