package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"faasd/internal/testkit"
)

// A function whose program cannot be found is told at load, is never ready, and shows as
// failing with the reason in the API and the CLI; it starts once the program appears,
// without a reload: `faasd up` may build it after the daemon read the file.
func TestFunctionWhoseProgramCannotBeFoundFailsWithTheReason(t *testing.T) {
	app := testkit.Dir(t)
	d := testkit.StartDaemon(t, fmt.Sprintf(`[functions.typo]
fprocess = "sha5sum -b"
[functions.unbuilt]
workdir = %q
command = ["./server"]
[functions.http-typo]
command = ["no-such-server", "--port", "$PORT"]
`, app), testkit.Options{Auth: true})
	log := d.Log()
	for _, want := range []string{
		`msg="function's program cannot be run: the function fails until it can" function=typo program=sha5sum workdir=` + d.Dir + ` PATH=`,
		`function=unbuilt program=./server workdir=` + app,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("no %q in the daemon's log", want)
		}
	}

	notFound := "program sha5sum: not found in any directory of PATH ("
	unbuilt := "program ./server: " + filepath.Join(app, "server") + " does not exist (relative to the workdir " + app + ")"
	httpTypo := "program no-such-server: not found in any directory of PATH ("
	for name, reason := range map[string]string{"typo": notFound, "unbuilt": unbuilt, "http-typo": httpTypo} {
		var st status
		testkit.WaitFor(t, 20*time.Second, name+" failing twice with its reason", func() bool {
			st = getStatus(t, d, name)
			failures, _ := st.raw["failures"].(float64)
			return st.raw["status"] == "failing" && failures >= 2
		})
		lastError, _ := st.raw["lastError"].(string)
		if !strings.Contains(lastError, reason) || strings.Contains(lastError, "$PATH") {
			t.Errorf("%s: lastError %q, want %q", name, lastError, reason)
		}
		if st.AvailableReplicas != 0 {
			t.Errorf("%s: %d replicas ready", name, st.AvailableReplicas)
		}
	}
	// The classic watchdog refused to start, and said why in the function's log.
	_, logs := d.API("GET", "/system/logs?name=typo&tail=-1", "")
	if !strings.Contains(logs, `watchdog: cannot fork fprocess=\"sha5sum -b\": `+notFound) {
		t.Errorf("typo's log lacks the watchdog's reason:\n%s", logs)
	}

	c := newCLI(t, d)
	c.login()
	list := c.ok("", "list", "-v")
	for _, want := range []string{"Last error", "failing", notFound, unbuilt, httpTypo} {
		if !strings.Contains(list, want) {
			t.Errorf("list -v lacks %q:\n%s", want, list)
		}
	}
	if out := c.ok("", "describe", "typo"); !strings.Contains(out, "Not Ready (failing, ") || !strings.Contains(out, "Last error:") || !strings.Contains(out, notFound) {
		t.Errorf("describe typo:\n%s", out)
	}

	if err := os.Symlink(filepath.Join(testkit.Bin(t), "workload"), filepath.Join(app, "server")); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 60*time.Second, "unbuilt to start once its program exists", func() bool {
		st := getStatus(t, d, "unbuilt")
		return st.AvailableReplicas == 1 && st.raw["status"] == "ready"
	})
	if code, body := invoke(t, d, "GET", "unbuilt", "", ""); code != 200 {
		t.Errorf("unbuilt: %d %s", code, body)
	}
}
