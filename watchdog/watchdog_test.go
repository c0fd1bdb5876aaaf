package watchdog

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"faasd/internal/testkit"
)

func TestLockFileCreatedOnStartAndRemovedOnShutdown(t *testing.T) {
	t.Parallel()
	h := start(t, map[string]string{"fprocess": "cat"})
	waitFor(t, "the lock file "+h.cfg.LockFile, func() bool { return fileExists(h.cfg.LockFile) })

	resp, body := h.request(t, http.MethodGet, healthPath, nil, nil)
	if resp.StatusCode != http.StatusOK || string(body) != "OK" {
		t.Errorf("health: status %d body %q, want 200 OK", resp.StatusCode, body)
	}
	if resp, _ := h.request(t, http.MethodPost, healthPath, nil, nil); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST health: status %d, want 405", resp.StatusCode)
	}
	if strings.Contains(h.logs.String(), "Forking") {
		t.Errorf("the health check forked the function")
	}

	if err := h.stop(t); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if fileExists(h.cfg.LockFile) {
		t.Errorf("lock file %s still exists after shutdown", h.cfg.LockFile)
	}
	for _, want := range []string{
		"Listening on port: ",
		"Writing lock-file to: " + h.cfg.LockFile,
		"Removing lock-file : " + h.cfg.LockFile,
		"Exiting. Active connections: 0",
	} {
		if !strings.Contains(h.logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, h.logs)
		}
	}
}

func TestHealthFollowsTheLockFile(t *testing.T) {
	t.Parallel()
	h := start(t, map[string]string{"fprocess": "cat"})
	waitFor(t, "the lock file", func() bool { return fileExists(h.cfg.LockFile) })
	// Whoever deletes the lock file declares the replica unhealthy, as upstream.
	if err := os.Remove(h.cfg.LockFile); err != nil {
		t.Fatal(err)
	}
	if resp, _ := h.request(t, http.MethodGet, healthPath, nil, nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("health without lock file: status %d, want 503", resp.StatusCode)
	}
}

func TestSuppressLock(t *testing.T) {
	t.Parallel()
	h := start(t, map[string]string{"fprocess": "cat", "suppress_lock": "true"})
	// Serving a request proves startup finished; only then is the absence meaningful.
	if resp, _ := h.request(t, http.MethodPost, "/", strings.NewReader("x"), nil); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if fileExists(h.cfg.LockFile) {
		t.Errorf("lock file written with suppress_lock=true")
	}
	if resp, _ := h.request(t, http.MethodGet, healthPath, nil, nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("health: status %d, want 503 (spec: stays 503 with suppress_lock)", resp.StatusCode)
	}
}

func TestShutdownRemovesLockThenDrainsInFlightRequest(t *testing.T) {
	t.Parallel()
	h := start(t, map[string]string{"fprocess": "cat"})
	waitFor(t, "the lock file", func() bool { return fileExists(h.cfg.LockFile) })

	pr, pw := io.Pipe()
	type result struct {
		status int
		body   string
		err    error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := h.client.Post(h.url+"/", "text/plain", pr)
		if err != nil {
			res <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		res <- result{resp.StatusCode, string(b), err}
	}()
	pw.Write([]byte("in flight "))
	waitFor(t, "the request to fork", func() bool { return strings.Contains(h.logs.String(), "Forking fprocess.") })

	h.cancel()
	waitFor(t, "the lock file to be removed", func() bool { return !fileExists(h.cfg.LockFile) })
	select {
	case err := <-h.done:
		t.Fatalf("Serve returned (%v) while a request was in flight", err)
	default:
	}

	pw.Write([]byte("during shutdown"))
	pw.Close()
	r := <-res
	if r.err != nil || r.status != 200 || r.body != "in flight during shutdown" {
		t.Errorf("in-flight request: status %d body %q err %v, want 200 and the whole body", r.status, r.body, r.err)
	}
	if err := h.stop(t); err != nil {
		t.Errorf("Serve: %v", err)
	}
	if !strings.Contains(h.logs.String(), "draining: 1 requests") {
		t.Errorf("log lacks the draining line:\n%s", h.logs)
	}
}

func TestShutdownReturnsOnlyAfterChildrenAreGone(t *testing.T) {
	t.Parallel()
	pidDir := t.TempDir()
	h := start(t, map[string]string{"fprocess": shScript(t, groupScript), "write_timeout": "300ms"}, "PIDDIR="+pidDir)
	go func() {
		resp, err := h.client.Get(h.url + "/")
		if err == nil {
			resp.Body.Close()
		}
	}()
	leader, bg := readPID(t, filepath.Join(pidDir, "leader")), readPID(t, filepath.Join(pidDir, "bg"))
	if err := h.stop(t); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	// Serve returns only after reaping its children, so the shell is gone already.
	if !processGone(leader) {
		t.Errorf("function process %d still running after Serve returned", leader)
	}
	waitFor(t, "the background job to die", func() bool { return processGone(bg) })
}

func TestServeReturnsLockFileError(t *testing.T) {
	t.Parallel()
	cfg, err := ConfigFromEnv(func(k string) string {
		return map[string]string{"PORT": "1", "fprocess": "cat", "TMPDIR": "/nonexistent/dir"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	err = Serve(context.Background(), ln, cfg, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "suppress_lock") || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Serve = %v, want a lock-file error that mentions suppress_lock", err)
	}
}

// A command that cannot run is an error at start, before the lock file: the replica is
// never ready, instead of answering every request with a 500.
func TestCommandThatCannotRunStopsTheWatchdogBeforeItIsReady(t *testing.T) {
	t.Parallel()
	plain := filepath.Join(t.TempDir(), "handler")
	if err := os.WriteFile(plain, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, fprocess, want string
	}{
		{"not in PATH", "no-such-command-xyz --flag",
			`watchdog: cannot fork fprocess="no-such-command-xyz --flag": program no-such-command-xyz: not found in any directory of PATH (/`},
		{"a missing absolute path", "/nonexistent/handler",
			`watchdog: cannot fork fprocess="/nonexistent/handler": program /nonexistent/handler: does not exist`},
		{"a missing relative path", "./handler.sh",
			`program ./handler.sh: `},
		{"not executable", plain + " -v",
			"program " + plain + ": is not executable (-rw-r--r--)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tmp := t.TempDir()
			cfg, err := ConfigFromEnv(func(k string) string {
				return map[string]string{"PORT": "8080", "fprocess": tt.fprocess, "TMPDIR": tmp}[k]
			})
			if err != nil {
				t.Fatal(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			// Before the check, Serve served until cancelled: bound it.
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			err = Serve(ctx, ln, cfg, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Serve = %v, want an error containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "$PATH") {
				t.Errorf("the error speaks of $PATH: %v", err)
			}
			if _, err := os.Stat(cfg.LockFile); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("lock file %s: %v, want none", cfg.LockFile, err)
			}
		})
	}
}

// A program that goes away after the start fails the requests that need it, as the
// classic watchdog does: the replica stays, as its other requests may succeed again.
func TestProgramRemovedAfterStartFailsRequests(t *testing.T) {
	t.Parallel()
	prog := filepath.Join(t.TempDir(), "handler")
	if err := os.WriteFile(prog, []byte("#!/bin/sh\ncat\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	h := start(t, map[string]string{"fprocess": prog})
	if resp, body := h.request(t, http.MethodPost, "/", strings.NewReader("in"), nil); resp.StatusCode != 200 || string(body) != "in" {
		t.Fatalf("before: %d %q", resp.StatusCode, body)
	}
	if err := os.Remove(prog); err != nil {
		t.Fatal(err)
	}
	resp, body := h.request(t, http.MethodPost, "/", strings.NewReader("in"), nil)
	if want := "fork/exec " + prog + ": no such file or directory\n"; resp.StatusCode != 500 || string(body) != want {
		t.Errorf("after: %d %q, want 500 %q", resp.StatusCode, body, want)
	}
}

func TestRunRejectsBadEnvironment(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{"no PORT", map[string]string{"fprocess": "cat"}, "PORT is not set"},
		{"bad PORT", map[string]string{"PORT": "eighty", "fprocess": "cat"}, `PORT="eighty"`},
		{"no fprocess", map[string]string{"PORT": "8080"}, "fprocess is not set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Run(context.Background(), func(k string) string { return tt.env[k] }, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Run = %v, want an error mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestRunReportsBusyPort(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	env := map[string]string{"PORT": port, "fprocess": "cat", "TMPDIR": t.TempDir()}
	err = Run(context.Background(), func(k string) string { return env[k] }, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "listen on 127.0.0.1:"+port) {
		t.Errorf("Run = %v, want a listen error naming the address", err)
	}
}

func TestRunServesOnLoopbackPort(t *testing.T) {
	t.Parallel()
	// Find a free port; another process could take it before Run binds, but not in a test run.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()

	tmp := t.TempDir()
	env := map[string]string{"PORT": port, "fprocess": "cat", "TMPDIR": tmp}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &testkit.SyncBuffer{}
	done := make(chan error, 1)
	go func() { done <- Run(ctx, func(k string) string { return env[k] }, logs) }()

	lock := filepath.Join(tmp, ".lock")
	waitFor(t, "Run to write "+lock, func() bool { return fileExists(lock) })
	resp, err := http.Post("http://127.0.0.1:"+port+"/", "text/plain", strings.NewReader("via Run"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "via Run" {
		t.Errorf("body %q", b)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Run did not return after cancel")
	}
	if fileExists(lock) {
		t.Errorf("lock file left behind")
	}
	if !strings.Contains(logs.String(), "Listening on port: "+port) {
		t.Errorf("log lacks the listening line:\n%s", logs)
	}
}
