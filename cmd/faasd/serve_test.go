package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"faasd/internal/testkit"
)

// serveInProcess runs `faasd serve` as main would, in a goroutine, and returns its log and
// a channel that delivers what run returned.
func serveInProcess(ctx context.Context, t *testing.T, config string, args ...string) (*testkit.SyncBuffer, <-chan error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "faasd.toml")
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	log := &testkit.SyncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"serve", "-f", path}, args...), os.Getenv, strings.NewReader(""), log, log)
	}()
	return log, done
}

func ended(t *testing.T, done <-chan error, log *testkit.SyncBuffer) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not return within 30s:\n%s", log)
		return nil
	}
}

func TestServeRefusesWhatItCannotRun(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, tc := range []struct {
		name, config string
		args         []string
		want         string
		usage        bool
		stopped      bool // it had started parts, and stopped them
	}{
		{"a bad log level", "", []string{"--log-level", "loud"}, "--log-level", true, false},
		{"an invalid file", "[gateway]\nlisten = 8080\n", nil, "faasd.toml:2: gateway.listen", false, false},
		{"the port is taken", fmt.Sprintf("[gateway]\nlisten = %q\nstate_dir = %q\n", taken.Addr(), t.TempDir()), nil, "listen: ", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log, done := serveInProcess(context.Background(), t, tc.config, tc.args...)
			err := ended(t, done, log)
			if err == nil || !strings.Contains(err.Error(), tc.want) || (exitCode(err) == 2) != tc.usage {
				t.Errorf("serve: %v (exit %d), want %q\n%s", err, exitCode(err), tc.want, log)
			}
			if got := strings.Contains(log.String(), "msg=stopped"); got != tc.stopped {
				t.Errorf("logged that it stopped: %v, want %v\n%s", got, tc.stopped, log)
			}
		})
	}
}

// The end of run's context stops the daemon as a signal would.
func TestServeStopsWhenItsContextEnds(t *testing.T) {
	addr := testkit.FreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log, done := serveInProcess(ctx, t, fmt.Sprintf("[gateway]\nlisten = %q\nstate_dir = %q\nauth = true\n", addr, t.TempDir()))
	testkit.WaitFor(t, 20*time.Second, "/healthz", func() bool {
		select {
		case err := <-done:
			t.Fatalf("serve ended: %v\n%s", err, log)
		default:
		}
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	if code, _ := testkit.Get(t, "http://"+addr+"/system/functions"); code != http.StatusUnauthorized {
		t.Errorf("/system without credentials: %d, want 401", code)
	}
	cancel()
	if err := ended(t, done, log); err != nil {
		t.Errorf("serve after its context ended: %v", err)
	}
	if !strings.Contains(log.String(), `msg="faasd serving"`) || !strings.Contains(log.String(), `msg=stopped`) {
		t.Errorf("log:\n%s", log)
	}
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Error("still listening after serve returned")
	}
}
