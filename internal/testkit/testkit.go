// Package testkit holds what the end-to-end tests share: building the binaries once,
// starting a daemon on a free port, and waiting for conditions with a deadline.
package testkit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// Bin returns the directory with the freshly built faasd and workload binaries. It is
// world-readable, because replicas run as an unprivileged user.
func Bin(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp(scratch, "faasd-e2e-bin-")
		if buildErr != nil {
			return
		}
		if buildErr = os.Chmod(binDir, 0o755); buildErr != nil {
			return
		}
		root := RepoRoot()
		for _, b := range []struct{ out, pkg string }{
			{"faasd", "./cmd/faasd"},
			{"workload", "./internal/testkit/workload"},
			{"hello-go", "./examples/hello-go"},
		} {
			args := []string{"build", "-o", filepath.Join(binDir, b.out)}
			if b.out == "faasd" {
				// As the Makefile builds it.
				args = append(args, "-tags", "osusergo,netgo")
				if os.Getenv("FAASD_E2E_RACE") == "1" {
					args = append(args, "-race")
				}
			}
			cmd := exec.Command("go", append(args, b.pkg)...)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %w\n%s", b.pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

// Main runs a package's tests and then removes the binaries Bin built; call it from
// TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// RepoRoot is the repository's top directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// scratch holds the tests' files. Not /tmp: every replica has its own /tmp, so programs
// and working directories under the host's /tmp are out of a replica's sight.
const scratch = "/var/tmp"

// Dir returns a temporary directory that unprivileged replicas can traverse.
func Dir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp(scratch, "faasd-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// FreeAddr returns a loopback address nobody listens on.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Daemon is a running `faasd serve`.
type Daemon struct {
	t      testing.TB
	opts   Options
	Cmd    *exec.Cmd
	URL    string
	Config string // path of its faasd.toml
	Dir    string
	log    *SyncBuffer
	exited chan struct{}
	Err    error // exit status, once exited

	// AdminURL serves /system, /ui and /metrics: the admin port with Options.Admin, else URL.
	AdminURL string
}

// Options tune StartDaemon.
type Options struct {
	// Gateway is extra TOML for the [gateway] table.
	Gateway string
	// Credential runs the daemon as another user.
	Credential *syscall.Credential
	// Auth turns basic auth on for /system.
	Auth bool
	// Admin gives /system, /ui and /metrics a port of their own ([gateway] admin_listen).
	Admin bool
	// Examples copies the repository's examples/ and links the built binaries (as bin/)
	// into the daemon's folder, so that the relative paths of ExampleStack resolve as they
	// do in the repository. A copy, not a link: the checkout may sit where the functions'
	// unprivileged user cannot read (under /root, say).
	Examples bool
}

// StartDaemon writes functions (TOML text, with {{BIN}} replaced by the binaries'
// directory) into a fresh faasd.toml, starts the daemon and waits for /healthz.
func StartDaemon(t testing.TB, functions string, opts ...Options) *Daemon {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	dir := Dir(t)
	addr := FreeAddr(t)
	d := &Daemon{t: t, opts: o, URL: "http://" + addr, Config: filepath.Join(dir, "faasd.toml"), Dir: dir, log: &SyncBuffer{}}
	d.AdminURL = d.URL
	gateway := o.Gateway
	if o.Admin {
		admin := FreeAddr(t)
		d.AdminURL = "http://" + admin
		gateway = fmt.Sprintf("admin_listen = %q\n%s", admin, gateway)
	}
	d.WriteConfig(fmt.Sprintf("[gateway]\nlisten = %q\nstate_dir = \"state\"\nauth = %v\n%s\n\n%s", addr, o.Auth, gateway, functions))
	if o.Examples {
		if err := os.CopyFS(filepath.Join(dir, "examples"), os.DirFS(filepath.Join(RepoRoot(), "examples"))); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(Bin(t), filepath.Join(dir, "bin")); err != nil {
			t.Fatal(err)
		}
	}
	if o.Credential != nil {
		for _, p := range []string{dir, d.Config} {
			if err := os.Chown(p, int(o.Credential.Uid), int(o.Credential.Gid)); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(func() {
		d.Stop()
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.Log())
		}
	})
	d.Start()
	return d
}

// Start starts the daemon (again, after it stopped) and waits for /healthz.
func (d *Daemon) Start() {
	t := d.t
	t.Helper()
	cmd := exec.Command(filepath.Join(Bin(t), "faasd"), "serve", "-f", d.Config, "--log-level", "debug")
	cmd.Dir = d.Dir
	cmd.Stdout = d.log
	cmd.Stderr = d.log
	if d.opts.Credential != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: d.opts.Credential}
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d.Cmd = cmd
	exited := make(chan struct{})
	d.exited = exited
	go func() {
		d.Err = cmd.Wait()
		close(exited)
	}()
	WaitFor(t, 20*time.Second, "daemon /healthz", func() bool {
		select {
		case <-exited:
			t.Fatalf("daemon exited: %v\n%s", d.Err, d.Log())
		default:
		}
		resp, err := http.Get(d.URL + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

// Password is the generated basic-auth password of the API.
func (d *Daemon) Password() string {
	b, err := os.ReadFile(filepath.Join(d.Dir, "state", "credentials", "basic-auth-password"))
	if err != nil {
		d.t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// API calls the /system API with the daemon's credentials and returns status and body.
func (d *Daemon) API(method, path, body string) (int, string) {
	d.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, d.AdminURL+path, rd)
	if err != nil {
		d.t.Fatal(err)
	}
	if d.opts.Auth {
		req.SetBasicAuth("admin", d.Password())
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// WriteConfig replaces the daemon's faasd.toml, as an editor would (write, then rename).
func (d *Daemon) WriteConfig(text string) {
	d.t.Helper()
	text = strings.ReplaceAll(text, "{{BIN}}", Bin(d.t))
	tmp := d.Config + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		d.t.Fatal(err)
	}
	if err := os.Rename(tmp, d.Config); err != nil {
		d.t.Fatal(err)
	}
}

// Log is everything the daemon wrote so far.
func (d *Daemon) Log() string { return d.log.String() }

// Signal sends sig to the daemon.
func (d *Daemon) Signal(sig syscall.Signal) {
	if err := d.Cmd.Process.Signal(sig); err != nil {
		d.t.Fatalf("signal %v: %v", sig, err)
	}
}

// Wait waits for the daemon to exit and returns its exit error.
func (d *Daemon) Wait(timeout time.Duration) error {
	d.t.Helper()
	select {
	case <-d.exited:
		return d.Err
	case <-time.After(timeout):
		d.t.Fatalf("daemon still running %s after being asked to stop\n%s", timeout, d.Log())
		return nil
	}
}

// Stop stops the daemon if it still runs: SIGTERM, then SIGKILL.
func (d *Daemon) Stop() {
	select {
	case <-d.exited:
		return
	default:
	}
	d.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(30 * time.Second):
		d.Cmd.Process.Kill()
		<-d.exited
	}
}

// Exited reports whether the daemon has exited.
func (d *Daemon) Exited() bool {
	select {
	case <-d.exited:
		return true
	default:
		return false
	}
}

// Info is what the workload answers on its info route.
type Info struct {
	PID     int                 `json:"pid"`
	UID     int                 `json:"uid"`
	Version string              `json:"version"`
	Path    string              `json:"path"`
	RawPath string              `json:"raw_path"`
	Query   string              `json:"query"`
	Host    string              `json:"host"`
	Headers map[string][]string `json:"headers"`
	LockPID string              `json:"lock_pid"`
	TMPDIR  string              `json:"tmpdir"`
	Port    string              `json:"port"`
	Home    string              `json:"home"`
	Secret  string              `json:"secret"`
}

// GetInfo calls a workload function's info route.
func (d *Daemon) GetInfo(fn string) (Info, error) {
	var info Info
	resp, err := http.Get(d.URL + "/function/" + fn + "/")
	if err != nil {
		return info, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return info, fmt.Errorf("status %d: %s", resp.StatusCode, body)
	}
	return info, json.Unmarshal(body, &info)
}

// Get returns the status and body of a GET.
func Get(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// WaitFor polls cond until it holds, failing the test with what it waited for after
// timeout.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// SyncBuffer is a bytes.Buffer that a process's output, log handlers and the test can
// share across goroutines.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Metric reads one per-function value from /metrics, or -1 when it is absent.
func (d *Daemon) Metric(name, fn string) float64 {
	return d.MetricWith(name, fmt.Sprintf("function_name=%q", fn+".openfaas-fn"))
}

// Load sends GETs to url at about rps requests a second from workers goroutines until
// stop is closed, and counts what failed.
type Load struct {
	OK, Failed atomic.Int64
	mu         sync.Mutex
	LastErr    string
	wg         sync.WaitGroup
	stop       chan struct{}
}

// StartLoad begins a paced load; call Stop to end it.
func StartLoad(url string, rps float64, workers int) *Load {
	l := &Load{stop: make(chan struct{})}
	interval := time.Duration(float64(time.Second) * float64(workers) / rps)
	client := &http.Client{Timeout: 30 * time.Second}
	for w := range workers {
		l.wg.Go(func() {
			// Spread the workers over the interval so the rate is even.
			next := time.Now().Add(interval * time.Duration(w) / time.Duration(workers))
			for {
				select {
				case <-l.stop:
					return
				case <-time.After(time.Until(next)):
				}
				next = next.Add(interval)
				resp, err := client.Get(url)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					l.Failed.Add(1)
					l.mu.Lock()
					l.LastErr = err.Error()
					l.mu.Unlock()
				} else {
					l.OK.Add(1)
				}
			}
		})
	}
	return l
}

// Stop ends the load and waits for the requests in flight.
func (l *Load) Stop() {
	close(l.stop)
	l.wg.Wait()
}

// ExampleStack returns the repository's faasd.toml without its [gateway] table, for
// StartDaemon with Options.Examples. Each pair of replacements (old, new) must occur in
// the file: tests move ports and shorten durations this way, and learn when the file
// changed under them.
func ExampleStack(t testing.TB, replacements ...string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(RepoRoot(), "faasd.toml"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	inGateway := false
	for _, line := range strings.Split(string(b), "\n") {
		if trimmed := strings.TrimSpace(line); strings.HasPrefix(trimmed, "[") {
			inGateway = trimmed == "[gateway]"
		}
		if !inGateway {
			out = append(out, line)
		}
	}
	text := strings.Join(out, "\n")
	for i := 0; i+1 < len(replacements); i += 2 {
		if !strings.Contains(text, replacements[i]) {
			t.Fatalf("faasd.toml no longer contains %q", replacements[i])
		}
		text = strings.ReplaceAll(text, replacements[i], replacements[i+1])
	}
	return text
}

// MetricWith reads the value of one series from /metrics, given its labels as they are
// written (`service="mariadb"`), or -1 when it is absent.
func (d *Daemon) MetricWith(name, labels string) float64 {
	resp, err := http.Get(d.AdminURL + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	want := name + "{" + labels + "} "
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), want); ok {
			var f float64
			fmt.Sscanf(v, "%g", &f)
			return f
		}
	}
	return -1
}

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
