package watchdog

import (
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"faasd/internal/testkit"
)

// waitTimeout bounds every wait in these tests; generous because -race on 2 cores is slow.
const waitTimeout = 10 * time.Second

// logLines returns the log lines written so far.
func logLines(s *testkit.SyncBuffer) []string {
	return strings.Split(strings.TrimRight(s.String(), "\n"), "\n")
}

// harness is one watchdog served on a loopback listener by Serve.
type harness struct {
	url    string
	host   string // host:port the watchdog answers on
	cfg    Config
	logs   *testkit.SyncBuffer
	client *http.Client
	cancel context.CancelFunc
	done   chan error

	stopOnce sync.Once
	stopErr  error
}

// start runs a watchdog configured by env (through ConfigFromEnv, with PORT and a private
// TMPDIR filled in) whose children additionally see childEnv. It is stopped on cleanup.
func start(t *testing.T, env map[string]string, childEnv ...string) *harness {
	t.Helper()
	vars := map[string]string{"PORT": "8080", "TMPDIR": t.TempDir()}
	maps.Copy(vars, env)
	cfg, err := ConfigFromEnv(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatalf("ConfigFromEnv: %v", err)
	}
	cfg.Env = append(os.Environ(), childEnv...)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{
		url:    "http://" + ln.Addr().String(),
		host:   ln.Addr().String(),
		cfg:    cfg,
		logs:   &testkit.SyncBuffer{},
		client: &http.Client{Transport: &http.Transport{}, Timeout: waitTimeout},
		cancel: cancel,
		done:   make(chan error, 1),
	}
	go func() { h.done <- Serve(ctx, ln, cfg, h.logs) }()
	t.Cleanup(func() {
		h.client.CloseIdleConnections()
		if err := h.stop(t); err != nil {
			t.Errorf("Serve returned %v", err)
		}
	})
	return h
}

// stop cancels Serve's context and waits for it to return.
func (h *harness) stop(t *testing.T) error {
	t.Helper()
	h.stopOnce.Do(func() {
		h.cancel()
		select {
		case h.stopErr = <-h.done:
		case <-time.After(waitTimeout):
			h.stopErr = errors.New("Serve did not return after its context was cancelled")
		}
	})
	return h.stopErr
}

// request sends one request and returns the response with its body read.
func (h *harness) request(t *testing.T, method, path string, body io.Reader, header http.Header) (*http.Response, []byte) {
	t.Helper()
	return h.requestCtx(t, context.Background(), method, path, body, header)
}

func (h *harness) requestCtx(t *testing.T, ctx context.Context, method, path string, body io.Reader, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, h.url+path, body)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	maps.Copy(req.Header, header)
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp, b
}

// waitFor polls cond until it holds, failing the test with what it waited for otherwise.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", waitTimeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// shScript writes a shell script and returns the fprocess that runs it. It runs as
// `sh path` rather than being exec'd itself: exec'ing a file just written while other tests
// fork can fail with ETXTBSY (golang/go#22315).
func shScript(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fn.sh")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return "sh " + path
}

// readPID waits for a script to publish a pid in file and returns it.
func readPID(t *testing.T, file string) int {
	t.Helper()
	var pid int
	waitFor(t, "pid file "+file, func() bool {
		b, err := os.ReadFile(file)
		if err != nil || !bytes.HasSuffix(b, []byte("\n")) {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	})
	return pid
}

// processGone reports whether pid no longer runs: it does not exist or is a zombie (an
// orphan waiting for an init that may not reap promptly, or at all, in a container).
func processGone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] == 'Z'
}

// childrenOfTest lists the pids whose parent is this test process (zombies included).
func childrenOfTest(t *testing.T) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	self := os.Getpid()
	var kids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(b[i+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(self) {
			kids = append(kids, pid)
		}
	}
	return kids
}

// parseEnv turns `env` output into a map.
func parseEnv(out []byte) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m
}
