package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"faasd/internal/testkit"
)

// screenshots is where TestUIShowsAutoscalingLive saves the README's pictures when asked
// (FAASD_UI_SCREENSHOTS=docs, in a run by hand); never in CI.
func screenshots() string {
	dir := os.Getenv("FAASD_UI_SCREENSHOTS")
	if dir != "" && !filepath.IsAbs(dir) {
		dir = filepath.Join(testkit.RepoRoot(), dir)
	}
	return dir
}

// q is a JavaScript expression for the first element selector picks.
func q(selector string) string {
	return fmt.Sprintf("document.querySelector(%s)", testkit.JSString(selector))
}

// TestUIShowsAutoscalingLive watches a function scale out under a load and back after it,
// in the overview's sparklines and on the function's page, without reloading.
func TestUIShowsAutoscalingLive(t *testing.T) {
	d := testkit.StartDaemon(t, workload("busy", `labels = { "com.openfaas.scale.max" = "3" }`)+`
[functions.wordcount]
fprocess = "wc"
`, testkit.Options{Auth: true, Gateway: `scale_down_window = "3s"`})
	b := testkit.StartBrowser(t, testkit.BrowserOptions{User: "admin", Password: d.Password()})
	shots := screenshots()

	b.Navigate(d.URL + "/ui/")
	b.WaitFor(20*time.Second, "busy listed with one ready replica and a sample", q(`tr[data-fn="busy"] .replicas`)+`?.textContent === "1 / 1" &&
		`+q(`tr[data-fn="busy"] .spark-replicas .s-ready`)+`?.dataset.last === "1"`)

	load := testkit.StartLoad(d.URL+"/function/busy/", 25, 5)
	// The overview's sparkline rises with the replicas; the rate and latency are shown.
	b.WaitFor(30*time.Second, "the overview showing three ready replicas", q(`tr[data-fn="busy"] .replicas`)+`?.textContent === "3 / 3" &&
		`+q(`tr[data-fn="busy"] .spark-replicas .s-ready`)+`?.dataset.max === "3"`)
	b.WaitFor(10*time.Second, "a rate and a latency in the overview", `Number(`+q(`tr[data-fn="busy"] .rate`)+`.textContent) > 5 &&
		/ms|µs/.test(`+q(`tr[data-fn="busy"] .latency`)+`.textContent)`)
	if shots != "" {
		b.Screenshot(filepath.Join(shots, "ui-overview.png"), "#overview")
	}

	// The function's page: the chart has the rise and the scaler's decision marked.
	b.Click(`tr[data-fn="busy"] .fn-name`)
	b.WaitFor(10*time.Second, "busy's chart with three ready replicas and a scale-up", `location.hash === "#/functions/busy" &&
		`+q(`#chart .panel-replicas .s-ready`)+`?.dataset.max === "3" && `+q(`#chart .marker-up`)+` !== null &&
		document.getElementById("decisions").textContent.includes("load")`)
	b.WaitFor(10*time.Second, "three replica rows", `document.querySelectorAll('#replicas tbody tr').length === 3 &&
		[...document.querySelectorAll('#replicas tbody tr')].every((tr) => /^\d+$/.test(tr.children[1].textContent))`)
	if got := b.Text("#stat-latency"); !strings.Contains(got, "/") || strings.Contains(got, "—") {
		t.Errorf("latency under load: %q", got)
	}
	load.Stop()
	if n := load.Failed.Load(); n > 0 {
		t.Fatalf("%d requests failed: %s", n, load.LastErr)
	}

	// After the load, the same chart shows the fall: the peak stays in the window.
	b.WaitFor(40*time.Second, "the chart back at one ready replica", q(`#chart .panel-replicas .s-ready`)+`?.dataset.last === "1" &&
		`+q(`#chart .panel-replicas .s-ready`)+`.dataset.max === "3" && `+q(`#chart .marker-down`)+` !== null &&
		document.getElementById("decisions").textContent.includes("stabilized")`)
	b.WaitFor(10*time.Second, "one replica row", `document.querySelectorAll('#replicas tbody tr').length === 1`)
	if shots != "" {
		b.Screenshot(filepath.Join(shots, "ui-function.png"), "#detail")
	}
	b.CheckClean()
}

// TestUIDeploysInvokesScalesAndKeepsSecrets goes through what a user does on the page:
// a secret created, deployed functions that read it (a classic one and an HTTP
// workload), invoked, scaled, the secret updated and removed; its value never shown.
func TestUIDeploysInvokesScalesAndKeepsSecrets(t *testing.T) {
	d := testkit.StartDaemon(t, "", testkit.Options{Auth: true, Gateway: `scale_down_window = "3s"`})
	b := testkit.StartBrowser(t, testkit.BrowserOptions{User: "admin", Password: d.Password()})
	const first, second = "first-value-7f3a", "second-value-91c2"

	// A secret, created on its page; the value is gone from the page once sent.
	b.Navigate(d.URL + "/ui/#/secrets")
	b.WaitFor(10*time.Second, "the secrets page", `!document.getElementById("view-secrets").hidden &&
		!document.getElementById("secrets-empty").hidden`)
	b.Type("#secret-name", "api-token")
	b.Type("#secret-value", first)
	b.Click("#secret-submit")
	b.WaitFor(10*time.Second, "api-token listed", q(`tr[data-secret="api-token"]`)+` !== null &&
		document.getElementById("secrets-result").textContent === "created api-token"`)
	if code, body := d.API("GET", "/system/secrets", ""); code != 200 || !strings.Contains(body, `"api-token"`) {
		t.Fatalf("secrets after creating one in the page: %d %s", code, body)
	}
	valueShown := func(v string) bool {
		var shown bool
		b.Eval(fmt.Sprintf(`document.body.innerText.includes(%[1]s) || [...document.querySelectorAll("input, textarea")].some((e) => e.value.includes(%[1]s))`, testkit.JSString(v)), &shown)
		return shown
	}
	if valueShown(first) {
		t.Error("the secret's value is still on the page")
	}

	// A classic function that prints the secret, deployed with it checked.
	b.Click("#nav-functions")
	b.WaitFor(10*time.Second, "the functions page", `!document.getElementById("view-functions").hidden`)
	b.Type("#deploy-service", "token-reader")
	b.Type("#deploy-process", "cat /var/openfaas/secrets/api-token")
	b.Click(`#deploy-secrets input[data-secret="api-token"]`)
	b.Click("#deploy-submit")
	b.WaitFor(20*time.Second, "token-reader ready", `document.getElementById("deploy-result").textContent.startsWith("deployed token-reader") &&
		`+q(`tr[data-fn="token-reader"] .status`)+`?.textContent === "ready"`)

	// An HTTP workload: command, working directory, environment, labels.
	b.Click("#deploy-kind-http")
	b.Type("#deploy-service", "web")
	b.Type("#deploy-command", filepath.Join(testkit.Bin(t), "workload")+` --flag "two words"`)
	b.WaitFor(5*time.Second, "the argv preview", `document.getElementById("deploy-argv").textContent.includes('"--flag","two words"]')`)
	b.Type("#deploy-workdir", "/")
	b.Type("#deploy-env", "VERSION=v-ui\nAPI_KEY=hunter2-e2e")
	b.Type("#deploy-labels", "com.openfaas.scale.max=3")
	b.Click("#deploy-submit")
	b.WaitFor(20*time.Second, "web ready", q(`tr[data-fn="web"] .status`)+`?.textContent === "ready"`)
	st := getStatus(t, d, "web")
	if got := st.raw["command"]; fmt.Sprint(got) != fmt.Sprint([]any{filepath.Join(testkit.Bin(t), "workload"), "--flag", "two words"}) {
		t.Errorf("web's command: %v", got)
	}
	if env := fmt.Sprint(st.raw["envVars"]); env != "map[API_KEY:hunter2-e2e VERSION:v-ui]" {
		t.Errorf("web's environment: %s", env)
	}
	if st.Labels["com.openfaas.scale.max"] != "3" {
		t.Errorf("web's labels: %v", st.Labels)
	}

	// Its page masks what looks like a secret until clicked.
	b.Click(`tr[data-fn="web"] .fn-name`)
	b.WaitFor(10*time.Second, "web's details", q(`#detail-fields button.masked[data-env="API_KEY"]`)+` !== null`)
	if valueShown("hunter2-e2e") {
		t.Error("API_KEY's value shown before a click")
	}
	if got := b.Text("#detail-fields"); !strings.Contains(got, "VERSION = v-ui") {
		t.Errorf("details: %q", got)
	}
	b.Click(`#detail-fields button.masked[data-env="API_KEY"]`)
	b.WaitFor(5*time.Second, "API_KEY revealed", q(`#detail-fields button.masked[data-env="API_KEY"]`)+`.textContent === "hunter2-e2e"`)

	// Invoke it from the page.
	b.Must("choose GET", chromedp.Do(b.Context(), chromedp.SetValue(chromedp.CSS("#invoke-method"), "GET")))
	b.Click("#invoke-submit")
	b.WaitFor(10*time.Second, "web's answer", `document.getElementById("invoke-status").textContent.startsWith("200 ") &&
		document.getElementById("invoke-output").textContent.includes('"version":"v-ui"')`)

	// Scale to 2: two replica rows with their process ids.
	b.Type("#scale-replicas", "2")
	b.Click("#scale-submit")
	b.WaitFor(20*time.Second, "two ready replicas of web", q(`tr[data-fn="web"] .replicas`)+`?.textContent === "2 / 2" &&
		[...document.querySelectorAll('#replicas tbody tr')].filter((tr) => tr.children[3].textContent === "ready" && /^\d+$/.test(tr.children[1].textContent)).length === 2`)

	// Right after some traffic, a scale to 0 from the page holds: the autoscaler does not
	// start a replica again from the rate it measured before. First the chart shows the
	// two replicas: the autoscaler has seen them.
	b.WaitFor(10*time.Second, "two replicas on the chart", q(`#chart .panel-replicas .s-ready`)+`?.dataset.last === "2"`)
	for range 40 {
		invoke(t, d, "GET", "web", "", "")
	}
	b.Type("#scale-replicas", "0")
	b.Click("#scale-submit")
	b.WaitFor(10*time.Second, "web at zero", q(`tr[data-fn="web"] .replicas`)+`?.textContent === "0 / 0"`)
	holdsAt(t, d, "web", 0, 4)
	b.WaitFor(10*time.Second, "the manual change in the decisions", `document.getElementById("decisions").textContent.includes("set 0") &&
		`+q(`#chart .panel-replicas .s-desired`)+`?.dataset.last === "0"`)

	// The classic function reads the secret; an update reaches its running replica.
	b.Click(`tr[data-fn="token-reader"] .fn-name`)
	b.WaitFor(10*time.Second, "token-reader's page", `document.getElementById("detail-title").textContent === "token-reader"`)
	b.Click("#invoke-submit")
	b.WaitFor(10*time.Second, "the secret read by the function", `document.getElementById("invoke-output").textContent === `+testkit.JSString(first))
	b.Click("#nav-secrets")
	b.Click(`tr[data-secret="api-token"] .secret-update`)
	b.Type(`tr[data-secret="api-token"] .secret-new-value`, second)
	b.Click(`tr[data-secret="api-token"] .secret-save`)
	b.WaitFor(10*time.Second, "the update confirmed", `document.getElementById("secrets-result").textContent.startsWith("updated api-token")`)
	if valueShown(second) {
		t.Error("the updated value is on the page")
	}
	if got := invokeUntilOK(t, d, "POST", "token-reader", "", ""); got != second {
		t.Errorf("token-reader after the update: %q, want %q", got, second)
	}

	// Remove the function, then the secret, confirming each.
	b.Click("#nav-functions")
	b.WaitFor(10*time.Second, "token-reader's page again", `!document.getElementById("detail").hidden &&
		document.getElementById("detail-title").textContent === "token-reader"`)
	b.Click("#delete-fn")
	b.WaitFor(10*time.Second, "token-reader gone", q(`tr[data-fn="token-reader"]`)+` === null`)
	b.Click("#nav-secrets")
	b.Click(`tr[data-secret="api-token"] .secret-remove`)
	b.WaitFor(10*time.Second, "api-token gone", q(`tr[data-secret="api-token"]`)+` === null &&
		!document.getElementById("secrets-empty").hidden`)
	if code, body := d.API("GET", "/system/secrets", ""); code != 200 || strings.TrimSpace(body) != "[]" {
		t.Errorf("secrets after removing the last in the page: %d %s", code, body)
	}
	// An edit of faasd.toml the daemon refuses shows on the page until the file loads.
	good, err := os.ReadFile(d.Config)
	if err != nil {
		t.Fatal(err)
	}
	d.WriteConfig(string(good) + "\n[functions.typo]\nfprocess = \"cat\"\nlables = {}\n")
	b.WaitFor(20*time.Second, "the refused reload on the page", `!document.getElementById("config-warning").hidden &&
		document.getElementById("config-warning").textContent.includes("functions.typo.lables: unknown key (did you mean labels?)")`)
	d.WriteConfig(string(good))
	b.WaitFor(20*time.Second, "the warning gone once the file loads", `document.getElementById("config-warning").hidden`)

	dialogs := b.Dialogs()
	if len(dialogs) != 2 || !strings.Contains(dialogs[0], "token-reader") || !strings.Contains(dialogs[1], "api-token") {
		t.Errorf("dialogs: %q", dialogs)
	}
	b.CheckClean()
}
