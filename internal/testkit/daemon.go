package testkit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"faasd/cgroup"
	"faasd/client"
	"faasd/statedir"
)

// Daemon is a running `faasd serve`.
type Daemon struct {
	t      T
	opts   Options
	Cmd    *exec.Cmd
	URL    string
	Config string // path of its faasd.toml
	Dir    string
	log    *SyncBuffer
	out    io.Writer // where its output goes: log, and the lines to OnLogLine
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
	// LogLevel is the daemon's --log-level; default debug.
	LogLevel string
	// OnLogLine hears each line the daemon writes, as it is written.
	OnLogLine func(line string)
	// Binary is the faasd binary to run; default: the one built from this tree.
	Binary string
}

// StartDaemon writes functions (TOML text, with {{BIN}} replaced by the binaries'
// directory) into a fresh faasd.toml, starts the daemon and waits for /healthz.
func StartDaemon(t T, functions string, opts ...Options) *Daemon {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	dir := Dir(t)
	addr := FreeAddr(t)
	d := &Daemon{t: t, opts: o, URL: "http://" + addr, Config: filepath.Join(dir, "faasd.toml"), Dir: dir, log: &SyncBuffer{}}
	d.out = d.log
	if o.OnLogLine != nil {
		d.out = io.MultiWriter(d.log, &lineWriter{line: o.OnLogLine})
	}
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
		removeCgroups(d.State().Root)
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.Log())
		}
	})
	d.Start()
	return d
}

// removeCgroups removes the cgroups a daemon left when a test killed it and did not
// start it again, as its next start on the state directory would.
func removeCgroups(stateDir string) {
	if os.Geteuid() != 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if m, err := cgroup.Open(ctx, cgroup.Options{StateDir: stateDir}); err == nil {
		m.Close(ctx)
	}
}

// Start starts the daemon (again, after it stopped) and waits for /healthz.
func (d *Daemon) Start() {
	t := d.t
	t.Helper()
	level := d.opts.LogLevel
	if level == "" {
		level = "debug"
	}
	binary := d.opts.Binary
	if binary == "" {
		binary = filepath.Join(Bin(t), "faasd")
	}
	cmd := exec.Command(binary, "serve", "-f", d.Config, "--log-level", level)
	cmd.Dir = d.Dir
	cmd.Stdout = d.out
	cmd.Stderr = d.out
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

// State is the layout of the daemon's state directory.
func (d *Daemon) State() statedir.Layout { return statedir.New(filepath.Join(d.Dir, "state")) }

// Password is the generated basic-auth password of the API.
func (d *Daemon) Password() string {
	d.t.Helper()
	_, password, err := d.State().ReadBasicAuth()
	if err != nil {
		d.t.Fatal(err)
	}
	return password
}

// Client is a client of the daemon's API, with its credentials when auth is on.
func (d *Daemon) Client() *client.Gateway {
	d.t.Helper()
	var auth client.Auth
	if d.opts.Auth {
		auth = client.Auth{User: "admin", Password: d.Password()}
	}
	return client.New(d.AdminURL, auth)
}

// API calls the /system API with the daemon's credentials and returns status and body.
func (d *Daemon) API(method, path, body string) (int, string) {
	d.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	resp, err := d.Client().Do(context.Background(), method, path, rd)
	if _, ok := errors.AsType[*client.AuthError](err); ok {
		return http.StatusUnauthorized, ""
	}
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
	resp, err := client.New(d.URL, client.Auth{}).Invoke(context.Background(), client.Invocation{Function: fn, Method: http.MethodGet, Path: "/"})
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
func Get(t T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// Metric reads one per-function value from /metrics, or -1 when it is absent.
func (d *Daemon) Metric(name, fn string) float64 {
	d.t.Helper()
	return d.MetricWith(name, "function_name", fn+".openfaas-fn")
}

// MetricWith reads the value of one series from /metrics, given all its labels as name,
// value pairs ("service", "mariadb"), or -1 when it is absent or the daemon does not
// answer. A page Prometheus could not read fails the test.
func (d *Daemon) MetricWith(name string, labels ...string) float64 {
	d.t.Helper()
	resp, err := http.Get(d.AdminURL + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	m, err := ReadMetrics(resp.Body)
	if err != nil {
		d.t.Fatalf("GET /metrics: %v", err)
	}
	if v, ok := m.Value(name, labels...); ok {
		return v
	}
	return -1
}

// ExampleStack returns the repository's faasd.toml without its [gateway] table, for
// StartDaemon with Options.Examples. Each pair of replacements (old, new) must occur in
// the file: tests move ports and shorten durations this way, and learn when the file
// changed under them.
func ExampleStack(t T, replacements ...string) string {
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

// lineWriter hands what is written to it to line, a line at a time.
type lineWriter struct {
	mu      sync.Mutex
	partial []byte
	line    func(string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.line(string(w.partial[:i]))
		w.partial = w.partial[i+1:]
	}
}
