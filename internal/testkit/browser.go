package testkit

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// ChromiumPath is Debian's Chromium, which scripts/install-deps.sh installs.
const ChromiumPath = "/usr/bin/chromium"

// Browser is a headless Chromium with one tab, driven over the DevTools protocol with
// chromedp. It answers the page's basic-auth challenge as a user would, accepts the
// page's dialogs, and collects what the page did wrong: uncaught exceptions, console
// errors and refusals of its content security policy.
type Browser struct {
	t   testing.TB
	ctx context.Context // the tab's

	mu         sync.Mutex
	problems   []string
	dialogs    []string
	challenges []string
}

// BrowserOptions tune StartBrowser.
type BrowserOptions struct {
	// User and Password answer basic-auth challenges; empty: challenges are cancelled.
	User, Password string
	// Limit bounds the browser's whole life; 0 is three minutes.
	Limit time.Duration
}

// cspProbe records refusals of the content security policy. It is test instrumentation,
// injected through the protocol, which the policy does not apply to.
const cspProbe = `window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(e.violatedDirective + " " + e.blockedURI));`

// StartBrowser starts Chromium with a fresh profile and opens a blank tab. It fails the
// test when Chromium is missing: the web UI is only proven by a real browser.
func StartBrowser(t testing.TB, o BrowserOptions) *Browser {
	t.Helper()
	if _, err := os.Stat(ChromiumPath); err != nil {
		t.Fatalf("the web UI tests need Chromium (make test-deps installs the Debian package chromium): %v", err)
	}
	if o.Limit == 0 {
		o.Limit = 3 * time.Minute
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(ChromiumPath),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
	)
	ctx, cancelTab := chromedp.NewContext(alloc)
	b := &Browser{t: t, ctx: ctx}
	// The whole life of the browser is bounded, whatever a step waits for.
	limit := time.AfterFunc(o.Limit, cancelAlloc)
	t.Cleanup(func() {
		limit.Stop()
		cancelTab()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", ChromiumPath, err)
	}

	go b.collectConsole(chromedp.Console(ctx))
	go b.acceptDialogs(chromedp.Events(ctx, page.JavascriptDialogOpening))
	go b.continueRequests(chromedp.Events(ctx, fetch.RequestPaused))
	go b.answerLogins(chromedp.Events(ctx, fetch.AuthRequired), o)
	// Every request pauses, so that a login challenge reaches answerLogins.
	if _, err := chromedp.Call(ctx, fetch.Enable, fetch.EnableParams{
		Patterns: []*fetch.RequestPattern{{URLPattern: "*"}}, HandleAuthRequests: new(true),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: cspProbe}); err != nil {
		t.Fatal(err)
	}
	return b
}

func (b *Browser) collectConsole(messages iter.Seq2[chromedp.ConsoleMessage, error]) {
	for m, err := range messages {
		if err != nil {
			return
		}
		// Failed requests are the network's to report; the tests check each answer.
		if m.IsException() || (m.Type == "error" && m.Source != "network") {
			b.mu.Lock()
			b.problems = append(b.problems, fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line+1))
			b.mu.Unlock()
		}
	}
}

func (b *Browser) acceptDialogs(events iter.Seq2[page.EventJavascriptDialogOpening, error]) {
	for ev, err := range events {
		if err != nil {
			return
		}
		b.mu.Lock()
		b.dialogs = append(b.dialogs, string(ev.Type)+": "+ev.Message)
		b.mu.Unlock()
		chromedp.Call(b.ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
	}
}

func (b *Browser) continueRequests(events iter.Seq2[fetch.EventRequestPaused, error]) {
	for ev, err := range events {
		if err != nil {
			return
		}
		chromedp.Call(b.ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
	}
}

func (b *Browser) answerLogins(events iter.Seq2[fetch.EventAuthRequired, error], o BrowserOptions) {
	for ev, err := range events {
		if err != nil {
			return
		}
		b.mu.Lock()
		b.challenges = append(b.challenges, fmt.Sprintf("%s %s %s", ev.AuthChallenge.Scheme, ev.AuthChallenge.Realm, ev.Request.URL))
		b.mu.Unlock()
		answer := &fetch.AuthChallengeResponse{Response: "CancelAuth"}
		if o.User != "" {
			answer = &fetch.AuthChallengeResponse{Response: "ProvideCredentials", Username: o.User, Password: o.Password}
		}
		chromedp.Call(b.ctx, fetch.ContinueWithAuth, fetch.ContinueWithAuthParams{RequestID: ev.RequestID, AuthChallengeResponse: answer})
	}
}

// Context is the tab's chromedp context, for actions this type has no helper for.
func (b *Browser) Context() context.Context { return b.ctx }

// Do runs chromedp actions in the tab, failing the test on an error.
func (b *Browser) Do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatal(err)
	}
}

// Navigate opens url and waits for the page to load.
func (b *Browser) Navigate(url string) {
	b.t.Helper()
	b.Do(chromedp.Navigate(url))
}

// Eval evaluates a JavaScript expression, awaiting a promise, and decodes its value
// into out (when not nil).
func (b *Browser) Eval(expr string, out any) error {
	raw, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]byte](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		return err
	}
	if out == nil || len(raw) == 0 {
		return nil
	}
	return json.Unmarshal(raw, out)
}

// Text is the textContent of the element selector picks, or "" when there is none.
func (b *Browser) Text(selector string) string {
	b.t.Helper()
	var s string
	if err := b.Eval(fmt.Sprintf(`(document.querySelector(%s) || {}).textContent || ""`, JSString(selector)), &s); err != nil {
		b.t.Fatal(err)
	}
	return s
}

// WaitFor polls a JavaScript condition until it is true, and on timeout fails with what
// the page showed.
func (b *Browser) WaitFor(timeout time.Duration, what, expr string) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	var lastErr error
	for time.Now().Before(deadline) {
		var ok bool
		if lastErr = b.Eval(expr, &ok); lastErr == nil && ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	var shown string
	b.Eval(`document.body ? document.body.innerText : ""`, &shown)
	b.t.Fatalf("timed out after %s waiting for %s (%s; last error: %v); the page shows:\n%s", timeout, what, expr, lastErr, shown)
}

// Click clicks an element with the mouse, as a user would, once it is visible.
func (b *Browser) Click(selector string) {
	b.t.Helper()
	b.Do(chromedp.Click(chromedp.CSS(selector)))
}

// Type replaces the value of a field with text, typed through the browser's input
// pipeline so that the page sees the events a keyboard would cause.
func (b *Browser) Type(selector, text string) {
	b.t.Helper()
	var found bool
	if err := b.Eval(fmt.Sprintf(`(() => { const e = document.querySelector(%s); if (!e) return false; e.value = ""; e.focus(); return true; })()`, JSString(selector)), &found); err != nil || !found {
		b.t.Fatalf("type into %s: %v (found: %v)", selector, err, found)
	}
	if _, err := chromedp.Call(b.ctx, input.InsertText, input.InsertTextParams{Text: text}); err != nil {
		b.t.Fatalf("type into %s: %v", selector, err)
	}
}

// Screenshot saves a PNG of the element selector picks, or of the whole page when
// selector is empty.
func (b *Browser) Screenshot(path, selector string) {
	b.t.Helper()
	shot := chromedp.FullScreenshot(100)
	if selector != "" {
		shot = chromedp.Screenshot(chromedp.CSS(selector))
	}
	png, err := chromedp.Run(b.ctx, shot)
	if err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// Dialogs are the dialogs the page opened, as "type: message".
func (b *Browser) Dialogs() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.dialogs...)
}

// Challenges are the basic-auth challenges the browser met, as "scheme realm url".
func (b *Browser) Challenges() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.challenges...)
}

// CheckClean fails the test if the page threw, logged an error or had anything refused
// by its content security policy.
func (b *Browser) CheckClean() {
	b.t.Helper()
	var violations []string
	if err := b.Eval(`window.__csp || []`, &violations); err != nil {
		b.t.Errorf("read CSP violations: %v", err)
	}
	if len(violations) > 0 {
		b.t.Errorf("content security policy violations: %q", violations)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.problems) > 0 {
		b.t.Errorf("the page reported problems:\n%s", strings.Join(b.problems, "\n"))
	}
}

// JSString quotes s as a JavaScript string literal.
func JSString(s string) string {
	q, _ := json.Marshal(s)
	return string(q)
}
