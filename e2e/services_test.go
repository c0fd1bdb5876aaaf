package e2e

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"faasd/internal/testkit"
)

// service returns the TOML of a service running the test workload on port, ready once
// the port accepts connections; delay holds its start back.
func service(name, port, delay string) string {
	return fmt.Sprintf(`[services.%s]
command = ["sh", "-c", "sleep %s; exec {{BIN}}/workload"]
env = { PORT = %q, NO_LOCK = "1" }
ready_tcp = "127.0.0.1:%s"
stop_grace = "2s"
`, name, delay, port, port)
}

func TestFunctionAddedOnReloadWaitsForItsService(t *testing.T) {
	d := testkit.StartDaemon(t, "")
	_, port, _ := net.SplitHostPort(testkit.FreeAddr(t))
	d.WriteConfig(strings.Join([]string{
		fmt.Sprintf("[gateway]\nlisten = %q\nstate_dir = \"state\"\nauth = false\n", strings.TrimPrefix(d.URL, "http://")),
		service("db", port, "1"),
		workload("app", `depends_on = ["db"]`),
	}, "\n"))
	testkit.WaitFor(t, 30*time.Second, "app serving after the reload", func() bool {
		_, err := d.GetInfo("app")
		return err == nil
	})
	log := d.Log()
	ready := strings.Index(log, `msg="service ready" service=db`)
	started := strings.Index(log, `msg="replica started" function=app`)
	if ready < 0 || started < 0 || started < ready {
		t.Fatalf("app's first replica started at %d of the log, db was ready at %d: want after", started, ready)
	}
	if !strings.Contains(log, `msg="function waits for its services" function=app`) {
		t.Error("the daemon did not say that app waits for db")
	}
	if got := d.MetricWith("faasd_service_ready", "service", "db"); got != 1 {
		t.Errorf("faasd_service_ready{service=\"db\"} = %v", got)
	}
}

func TestServiceThatCannotStartStopsTheDaemonWithItsReason(t *testing.T) {
	dir := testkit.Dir(t)
	cfg := filepath.Join(dir, "faasd.toml")
	text := fmt.Sprintf(`[gateway]
listen = %q
state_dir = "state"
auth = false

[services.db]
command = ["true"]
init = ["sh", "-c", "echo no disk for the database >&2; exit 3"]

%s`, testkit.FreeAddr(t), workload("app", `depends_on = ["db"]`))
	if err := os.WriteFile(cfg, []byte(strings.ReplaceAll(text, "{{BIN}}", testkit.Bin(t))), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(testkit.Bin(t), "faasd"), "serve", "-f", cfg)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("daemon ended with %v, want exit status 1\n%s", err, out)
	}
	for _, want := range []string{"no disk for the database", "faasd: service db did not become ready: init: exit status 3"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), `msg="replica started"`) {
		t.Errorf("a function started although its service never did:\n%s", out)
	}
}
