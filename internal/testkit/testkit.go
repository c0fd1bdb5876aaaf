// Package testkit holds what the end-to-end tests and the benchmarks share: building the
// binaries once, starting a daemon on a free port and reading what it reports, waiting
// for conditions with a deadline, driving load, and looking at processes. Benchmarks run
// their bodies under a Program, which stands in for a *testing.T.
package testkit

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

// T is what the kit needs of its caller: *testing.T and *testing.B have it, and so has a
// Program. Fatal and Fatalf end the calling goroutine, which must be the test's own.
type T interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	Cleanup(func())
	Failed() bool
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// Bin returns the directory with the freshly built faasd and workload binaries. It is
// world-readable, because replicas run as an unprivileged user. FAASD_E2E_RACE=1 builds
// faasd with the race detector.
func Bin(t T) string {
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
			if b.out == "hello-go" {
				// As the Makefile builds the example: static, so that no start pays for
				// the dynamic loader.
				cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			}
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

// removeBin removes what Bin built.
func removeBin() {
	if binDir != "" {
		os.RemoveAll(binDir)
	}
}

// Main runs a package's tests and then removes the binaries Bin built; call it from
// TestMain.
func Main(m *testing.M) {
	code := m.Run()
	removeBin()
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
func Dir(t T) string {
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
func FreeAddr(t T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// WaitFor polls cond until it holds, failing the test with what it waited for after
// timeout.
func WaitFor(t T, timeout time.Duration, what string, cond func() bool) {
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
