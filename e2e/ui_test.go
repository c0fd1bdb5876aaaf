package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"faasd/internal/testkit"
)

// xssProbe is an annotation that would become elements if the page ever rendered data
// as HTML.
const xssProbe = `<img src=x onerror=alert(1)> & <b>bold</b>`

// TestWebUIInRealBrowser drives the web UI in headless Chromium as a user would: the
// browser's login challenge, the function table, invoke, scale, logs, deploy, delete,
// and an API error, all through the page's own controls.
func TestWebUIInRealBrowser(t *testing.T) {
	b := startBrowser(t, 3*time.Minute)
	d := testkit.StartDaemon(t, fmt.Sprintf(`[functions.echo]
fprocess = "cat"
labels = { "com.example.team" = "ui" }
annotations = { note = %q }
`, xssProbe), testkit.Options{Auth: true})
	password := d.Password()

	// What the page does wrong shows up here: script errors, CSP refusals, console errors.
	// Subscribed before the page loads, handled beside the test's own steps.
	var mu sync.Mutex
	var problems, dialogs []string
	var challenges []string
	events, stopEvents := context.WithCancel(b.ctx)
	exceptions := chromedp.Events(events, runtime.ExceptionThrown)
	entries := chromedp.Events(events, log.EntryAdded)
	dialogOpened := chromedp.Events(events, page.JavascriptDialogOpening)
	var handlers sync.WaitGroup
	t.Cleanup(func() {
		stopEvents() // ends the iterators
		handlers.Wait()
	})
	handlers.Go(func() {
		for e, err := range exceptions {
			if err != nil {
				return
			}
			mu.Lock()
			problems = append(problems, "exception: "+e.ExceptionDetails.Text+" "+description(e.ExceptionDetails.Exception))
			mu.Unlock()
		}
	})
	handlers.Go(func() {
		for e, err := range entries {
			if err != nil {
				return
			}
			// Failed requests are the network's to report; the steps below check each.
			if e.Entry.Level == log.EntryLevelError && e.Entry.Source != log.EntrySourceNetwork {
				mu.Lock()
				problems = append(problems, fmt.Sprintf("console %s: %s %s", e.Entry.Source, e.Entry.Text, e.Entry.URL))
				mu.Unlock()
			}
		}
	})
	handlers.Go(func() {
		for e, err := range dialogOpened {
			if err != nil {
				return
			}
			mu.Lock()
			dialogs = append(dialogs, string(e.Type)+": "+e.Message)
			mu.Unlock()
			chromedp.Call(b.ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	})
	// The login prompt, answered as a user would answer it; requests go on unchanged.
	b.answerLogins("admin", password, func(challenge string) {
		mu.Lock()
		challenges = append(challenges, challenge)
		mu.Unlock()
	})
	// Test instrumentation, which CSP does not apply to: the page's own code must never
	// be refused by its policy.
	_, err := chromedp.Call(b.ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `window.__csp = [];
		document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(e.violatedDirective + " " + e.blockedURI));`})
	b.must("Page.addScriptToEvaluateOnNewDocument", err)

	// The root leads to the UI, which asks for a login, then lists the functions.
	b.navigate(d.URL + "/")
	row := func(name, cell string) string { return fmt.Sprintf(`tr[data-fn=%q] .%s`, name, cell) }
	b.waitFor("echo ready in the table", fmt.Sprintf(`location.pathname === "/ui/" &&
		document.querySelector(%s)?.textContent === "ready" && document.querySelector(%s)?.textContent === "1 / 1"`,
		jsString(row("echo", "status")), jsString(row("echo", "replicas"))))
	// One login, for the page: its API calls reuse it rather than prompting again.
	mu.Lock()
	if len(challenges) != 1 || challenges[0] != "basic Restricted "+d.URL+"/ui/" {
		t.Errorf("login challenges: %q, want one for /ui/", challenges)
	}
	mu.Unlock()

	// Details render data as text: the annotation shows verbatim and makes no elements.
	b.click(`tr[data-fn="echo"] .fn-name`)
	b.waitFor("echo's details", `!document.getElementById("detail").hidden &&
		document.getElementById("detail-title").textContent === "echo"`)
	if got := b.text("#detail-fields"); !strings.Contains(got, xssProbe) || !strings.Contains(got, "com.example.team = ui") || !strings.Contains(got, "cat") {
		t.Errorf("details: %q", got)
	}
	var injected int
	b.eval(`document.querySelectorAll("img, b").length`, &injected)
	if injected != 0 {
		t.Errorf("%d elements made from function metadata", injected)
	}
	var deletable bool
	b.eval(`!document.getElementById("delete-fn").disabled`, &deletable)
	if deletable {
		t.Error("a function of faasd.toml offered for deletion")
	}

	// Invoke: the body comes back with the gateway's headers.
	b.typeInto("#invoke-body", "hello from chromium")
	b.click("#invoke-submit")
	b.waitFor("the invocation's answer", `document.getElementById("invoke-status").textContent.startsWith("200 ")`)
	if got := b.text("#invoke-output"); got != "hello from chromium" {
		t.Errorf("invoke output %q", got)
	}
	if got := b.text("#invoke-headers"); !strings.Contains(got, "X-Call-Id") {
		t.Errorf("invoke headers %q", got)
	}
	// The table refreshes by itself.
	b.waitFor("one invocation counted", fmt.Sprintf(`document.querySelector(%s)?.textContent === "1"`, jsString(row("echo", "invocations"))))

	// Scale to 2 and see both ready, in the page and in the API.
	b.typeInto("#scale-replicas", "2")
	b.click("#scale-submit")
	b.waitFor("2 of 2 replicas", fmt.Sprintf(`document.querySelector(%s)?.textContent === "2 / 2"`, jsString(row("echo", "replicas"))))
	if st := getStatus(t, d, "echo"); st.Replicas != 2 || st.AvailableReplicas != 2 {
		t.Errorf("after scaling in the UI: %+v", st)
	}

	// Logs: the last lines, then a followed stream that shows a new invocation.
	b.click("#logs-load")
	b.waitFor("the watchdog's log line", `document.getElementById("logs-output").textContent.includes("Forking fprocess.")`)
	b.click("#logs-follow")
	b.waitFor("the followed stream", `document.getElementById("logs-state").textContent === "following…" &&
		document.getElementById("logs-output").textContent.includes("Forking fprocess.")`)
	if code, body := invoke(t, d, "POST", "echo", "", "again"); code != 200 {
		t.Fatalf("invoke: %d %s", code, body)
	}
	b.waitFor("the new invocation's line on the stream", `document.getElementById("logs-output").textContent.split("Forking fprocess.").length === 3`)
	b.click("#logs-follow")
	b.waitFor("the stream stopped", `!document.getElementById("logs-follow").checked && document.getElementById("logs-state").textContent === ""`)

	// Deploy a classic function and call it: no Authorization reaches the function, as
	// the page calls functions without the admin's credentials.
	b.typeInto("#deploy-service", "printenv")
	b.typeInto("#deploy-process", "env")
	b.click("#deploy-submit")
	b.waitFor("printenv deployed and ready", fmt.Sprintf(`document.getElementById("deploy-result").textContent.startsWith("deployed printenv") &&
		document.querySelector(%s)?.textContent === "ready"`, jsString(row("printenv", "status"))))
	b.click(`tr[data-fn="printenv"] .fn-name`)
	b.waitFor("printenv's details", `document.getElementById("detail-title").textContent === "printenv"`)
	b.click("#invoke-submit")
	b.waitFor("printenv's answer", `document.getElementById("invoke-status").textContent.startsWith("200 ")`)
	if got := b.text("#invoke-output"); !strings.Contains(got, "Http_Method=POST") || strings.Contains(got, "Authorization") {
		t.Errorf("printenv output: %q", got)
	}

	// Delete it, confirming the dialog.
	b.click("#delete-fn")
	b.waitFor("printenv gone from the table", `!document.querySelector('tr[data-fn="printenv"]') && document.getElementById("detail").hidden`)
	if code, body := d.API("GET", "/system/function/printenv", ""); code != 404 {
		t.Errorf("printenv after delete in the UI: %d %s", code, body)
	}
	mu.Lock()
	if len(dialogs) != 1 || !strings.HasPrefix(dialogs[0], "confirm: ") || !strings.Contains(dialogs[0], "printenv") {
		t.Errorf("dialogs: %q", dialogs)
	}
	mu.Unlock()

	// The API's errors are shown as it gave them.
	b.typeInto("#deploy-service", "echo")
	b.typeInto("#deploy-process", "cat")
	b.click("#deploy-submit")
	b.waitFor("the conflict", `document.getElementById("deploy-result").textContent.startsWith("POST /system/functions: 409 ") &&
		document.getElementById("deploy-result").className === "error"`)

	// A function removed elsewhere leaves the page with a note, not a stale panel.
	if code, body := d.API("POST", "/system/functions", `{"service":"elsewhere","envProcess":"cat"}`); code != 202 {
		t.Fatalf("deploy: %d %s", code, body)
	}
	b.waitFor("elsewhere listed", `!!document.querySelector('tr[data-fn="elsewhere"]')`)
	b.click(`tr[data-fn="elsewhere"] .fn-name`)
	b.waitFor("elsewhere's details", `document.getElementById("detail-title").textContent === "elsewhere"`)
	if code, body := d.API("DELETE", "/system/functions", `{"functionName":"elsewhere"}`); code != 202 {
		t.Fatalf("delete: %d %s", code, body)
	}
	b.waitFor("the note that elsewhere was removed", `document.getElementById("detail").hidden &&
		!document.querySelector('tr[data-fn="elsewhere"]') &&
		document.getElementById("notice").textContent === "elsewhere is no longer listed: it was removed."`)

	// An asynchronous call runs through the same path; the queue's column shows it gone.
	resp, err := http.Post(d.URL+"/async-function/echo", "text/plain", strings.NewReader("later"))
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("async call: %v %v", err, resp)
	}
	resp.Body.Close()
	b.waitFor("the async call counted, none queued", fmt.Sprintf(`document.querySelector(%s)?.textContent === "3" && document.querySelector(%s)?.textContent === "0"`,
		jsString(row("echo", "invocations")), jsString(row("echo", "queued"))))

	var violations []string
	b.eval(`window.__csp`, &violations)
	if len(violations) > 0 {
		t.Errorf("content security policy violations: %q", violations)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		t.Errorf("the page reported problems:\n%s", strings.Join(problems, "\n"))
	}
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

// description is what an exception's object says of itself, if there is one.
func description(o *runtime.RemoteObject) string {
	if o == nil {
		return ""
	}
	return o.Description
}
