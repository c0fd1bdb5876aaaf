package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"faasd/internal/testkit"
)

// xssProbe is an annotation that would become elements if the page ever rendered data
// as HTML.
const xssProbe = `<img src=x onerror=alert(1)> & <b>bold</b>`

// TestWebUIInRealBrowser drives the web UI in headless Chromium as a user would: the
// browser's login challenge, the function table, invoke, scale, logs, deploy, delete,
// and an API error, all through the page's own controls.
func TestWebUIInRealBrowser(t *testing.T) {
	d := testkit.StartDaemon(t, fmt.Sprintf(`[functions.echo]
fprocess = "cat"
labels = { "com.example.team" = "ui" }
annotations = { note = %q }
`, xssProbe), testkit.Options{Auth: true})
	// The login prompt is answered as a user would answer it; script errors, CSP refusals
	// and console errors are collected for the end.
	b := testkit.StartBrowser(t, testkit.BrowserOptions{User: "admin", Password: d.Password()})

	// The root leads to the UI, which asks for a login, then lists the functions.
	b.Navigate(d.URL + "/")
	row := func(name, cell string) string { return fmt.Sprintf(`tr[data-fn=%q] .%s`, name, cell) }
	b.WaitFor(20*time.Second, "echo ready in the table", fmt.Sprintf(`location.pathname === "/ui/" &&
		document.querySelector(%s)?.textContent === "ready" && document.querySelector(%s)?.textContent === "1 / 1"`,
		testkit.JSString(row("echo", "status")), testkit.JSString(row("echo", "replicas"))))
	// One login, for the page: its API calls reuse it rather than prompting again.
	if challenges := b.Challenges(); len(challenges) != 1 || challenges[0] != "basic Restricted "+d.URL+"/ui/" {
		t.Errorf("login challenges: %q, want one for /ui/", challenges)
	}

	// Details render data as text: the annotation shows verbatim and makes no elements.
	b.Click(`tr[data-fn="echo"] .fn-name`)
	b.WaitFor(20*time.Second, "echo's details", `!document.getElementById("detail").hidden &&
		document.getElementById("detail-title").textContent === "echo"`)
	if got := b.Text("#detail-fields"); !strings.Contains(got, xssProbe) || !strings.Contains(got, "com.example.team = ui") || !strings.Contains(got, "cat") {
		t.Errorf("details: %q", got)
	}
	var injected int
	b.Eval(`document.querySelectorAll("img, b").length`, &injected)
	if injected != 0 {
		t.Errorf("%d elements made from function metadata", injected)
	}
	var deletable bool
	b.Eval(`!document.getElementById("delete-fn").disabled`, &deletable)
	if deletable {
		t.Error("a function of faasd.toml offered for deletion")
	}

	// Invoke: the body comes back with the gateway's headers.
	b.Type("#invoke-body", "hello from chromium")
	b.Click("#invoke-submit")
	b.WaitFor(20*time.Second, "the invocation's answer", `document.getElementById("invoke-status").textContent.startsWith("200 ")`)
	if got := b.Text("#invoke-output"); got != "hello from chromium" {
		t.Errorf("invoke output %q", got)
	}
	if got := b.Text("#invoke-headers"); !strings.Contains(got, "X-Call-Id") {
		t.Errorf("invoke headers %q", got)
	}
	// The table refreshes by itself.
	b.WaitFor(20*time.Second, "one invocation counted", fmt.Sprintf(`document.querySelector(%s)?.textContent === "1"`, testkit.JSString(row("echo", "invocations"))))

	// Scale to 2 and see both ready, in the page and in the API.
	b.Type("#scale-replicas", "2")
	b.Click("#scale-submit")
	b.WaitFor(20*time.Second, "2 of 2 replicas", fmt.Sprintf(`document.querySelector(%s)?.textContent === "2 / 2"`, testkit.JSString(row("echo", "replicas"))))
	if st := getStatus(t, d, "echo"); st.Replicas != 2 || st.AvailableReplicas != 2 {
		t.Errorf("after scaling in the UI: %+v", st)
	}

	// Logs: the last lines, then a followed stream that shows a new invocation.
	b.Click("#logs-load")
	b.WaitFor(20*time.Second, "the watchdog's log line", `document.getElementById("logs-output").textContent.includes("Forking fprocess.")`)
	b.Click("#logs-follow")
	b.WaitFor(20*time.Second, "the followed stream", `document.getElementById("logs-state").textContent === "following…" &&
		document.getElementById("logs-output").textContent.includes("Forking fprocess.")`)
	if code, body := invoke(t, d, "POST", "echo", "", "again"); code != 200 {
		t.Fatalf("invoke: %d %s", code, body)
	}
	b.WaitFor(20*time.Second, "the new invocation's line on the stream", `document.getElementById("logs-output").textContent.split("Forking fprocess.").length === 3`)
	b.Click("#logs-follow")
	b.WaitFor(20*time.Second, "the stream stopped", `!document.getElementById("logs-follow").checked && document.getElementById("logs-state").textContent === ""`)

	// Deploy a classic function and call it: no Authorization reaches the function, as
	// the page calls functions without the admin's credentials.
	b.Type("#deploy-service", "printenv")
	b.Type("#deploy-process", "env")
	b.Click("#deploy-submit")
	b.WaitFor(20*time.Second, "printenv deployed and ready", fmt.Sprintf(`document.getElementById("deploy-result").textContent.startsWith("deployed printenv") &&
		document.querySelector(%s)?.textContent === "ready"`, testkit.JSString(row("printenv", "status"))))
	b.Click(`tr[data-fn="printenv"] .fn-name`)
	b.WaitFor(20*time.Second, "printenv's details", `document.getElementById("detail-title").textContent === "printenv"`)
	b.Click("#invoke-submit")
	b.WaitFor(20*time.Second, "printenv's answer", `document.getElementById("invoke-status").textContent.startsWith("200 ")`)
	if got := b.Text("#invoke-output"); !strings.Contains(got, "Http_Method=POST") || strings.Contains(got, "Authorization") {
		t.Errorf("printenv output: %q", got)
	}

	// Delete it, confirming the dialog.
	b.Click("#delete-fn")
	b.WaitFor(20*time.Second, "printenv gone from the table", `!document.querySelector('tr[data-fn="printenv"]') && document.getElementById("detail").hidden`)
	if code, body := d.API("GET", "/system/function/printenv", ""); code != 404 {
		t.Errorf("printenv after delete in the UI: %d %s", code, body)
	}
	if dialogs := b.Dialogs(); len(dialogs) != 1 || !strings.HasPrefix(dialogs[0], "confirm: ") || !strings.Contains(dialogs[0], "printenv") {
		t.Errorf("dialogs: %q", dialogs)
	}

	// The API's errors are shown as it gave them.
	b.Type("#deploy-service", "echo")
	b.Type("#deploy-process", "cat")
	b.Click("#deploy-submit")
	b.WaitFor(20*time.Second, "the conflict", `document.getElementById("deploy-result").textContent.startsWith("POST /system/functions: 409 ") &&
		document.getElementById("deploy-result").className === "error"`)

	// A function removed elsewhere leaves the page with a note, not a stale panel.
	if code, body := d.API("POST", "/system/functions", `{"service":"elsewhere","envProcess":"cat"}`); code != 202 {
		t.Fatalf("deploy: %d %s", code, body)
	}
	b.WaitFor(20*time.Second, "elsewhere listed", `!!document.querySelector('tr[data-fn="elsewhere"]')`)
	b.Click(`tr[data-fn="elsewhere"] .fn-name`)
	b.WaitFor(20*time.Second, "elsewhere's details", `document.getElementById("detail-title").textContent === "elsewhere"`)
	if code, body := d.API("DELETE", "/system/functions", `{"functionName":"elsewhere"}`); code != 202 {
		t.Fatalf("delete: %d %s", code, body)
	}
	b.WaitFor(20*time.Second, "the note that elsewhere was removed", `document.getElementById("detail").hidden &&
		!document.querySelector('tr[data-fn="elsewhere"]') &&
		document.getElementById("notice").textContent === "elsewhere is no longer listed: it was removed."`)

	// An asynchronous call runs through the same path; the queue's column shows it gone.
	resp, err := http.Post(d.URL+"/async-function/echo", "text/plain", strings.NewReader("later"))
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("async call: %v %v", err, resp)
	}
	resp.Body.Close()
	b.WaitFor(20*time.Second, "the async call counted, none queued", fmt.Sprintf(`document.querySelector(%s)?.textContent === "3" && document.querySelector(%s)?.textContent === "0"`,
		testkit.JSString(row("echo", "invocations")), testkit.JSString(row("echo", "queued"))))

	b.CheckClean()
}

// TestWebUIRequiresLogin: the page and its files are behind the API's basic auth; the
// root redirects to it.
func TestWebUIRequiresLogin(t *testing.T) {
	d := testkit.StartDaemon(t, "", testkit.Options{Auth: true})
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(d.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 307 || resp.Header.Get("Location") != "/ui/" {
		t.Errorf("GET /: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, path := range []string{"/ui/", "/ui/app.js", "/ui/style.css"} {
		req, _ := http.NewRequest("GET", d.URL+path, nil)
		if code, _ := testkit.Get(t, d.URL+path); code != 401 {
			t.Errorf("%s without credentials: %d", path, code)
		}
		req.SetBasicAuth("admin", d.Password())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("%s: %d %v", path, resp.StatusCode, resp.Header)
		}
	}
}
