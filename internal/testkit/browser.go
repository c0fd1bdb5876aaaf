package testkit

import (
	"context"
	"encoding/json"
	"fmt"
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

// commandLimit bounds one DevTools command, and how long Click waits for its element, so
// that a hung browser fails the test with the step's name rather than at its deadline.
const commandLimit = 20 * time.Second

// Browser is a headless Chromium with one tab, driven by chromedp over the DevTools
// protocol on a pair of pipes: no port, so nobody else on the host can connect to it. It
// answers the page's basic-auth challenges as a user typing at the prompt would, accepts
// its dialogs, and collects what the page did wrong: uncaught exceptions, console errors
// and refusals of its content security policy.
type Browser struct {
	t   testing.TB
	ctx context.Context // the tab's
	out *SyncBuffer     // Chromium's own output, shown when the test fails

	mu         sync.Mutex
	problems   []string
	dialogs    []string
	challenges []string
}

// BrowserOptions tune StartBrowser.
type BrowserOptions struct {
	// User and Password answer basic-auth challenges; with no User they are cancelled.
	User, Password string
	// Limit bounds the browser's whole life; 0 is three minutes.
	Limit time.Duration
}

// cspProbe records refusals of the content security policy. It is test instrumentation,
// injected through the protocol, which the policy does not apply to: the page's own code
// must never be refused by its policy.
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
	b := &Browser{t: t, out: &SyncBuffer{}}
	life, cancel := context.WithTimeout(context.Background(), o.Limit)
	alloc, cancelAlloc := chromedp.NewExecAllocator(life,
		chromedp.ExecPath(ChromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
		chromedp.CombinedOutput(b.out),
	)
	tab, cancelTab := chromedp.NewContext(alloc)
	b.ctx = tab
	// The cleanups run in reverse: the handlers stop, the tab closes, then the browser
	// stops, and its helpers with it, before t.TempDir removes the profile.
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		cancel()
		if t.Failed() {
			t.Logf("chromium output:\n%s", b.out.String())
		}
	})
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("start %s: %v\n%s", ChromiumPath, err, b.out.String())
	}

	// Subscribed before any page loads; handled beside the test's own steps.
	events, stopEvents := context.WithCancel(tab)
	console := chromedp.Console(events)
	dialogs := chromedp.Events(events, page.JavascriptDialogOpening)
	paused := chromedp.Events(events, fetch.RequestPaused)
	logins := chromedp.Events(events, fetch.AuthRequired)
	var handlers sync.WaitGroup
	t.Cleanup(func() {
		stopEvents() // ends the iterators
		handlers.Wait()
	})
	handlers.Go(func() {
		for m, err := range console {
			if err != nil {
				return
			}
			// Failed requests are the network's to report; the tests check each answer.
			if m.IsException() || (m.Type == "error" && m.Source != "network") {
				b.note(&b.problems, fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line+1))
			}
		}
	})
	handlers.Go(func() {
		for e, err := range dialogs {
			if err != nil {
				return
			}
			b.note(&b.dialogs, string(e.Type)+": "+e.Message)
			chromedp.Call(tab, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	})
	handlers.Go(func() {
		for e, err := range paused {
			if err != nil {
				return
			}
			chromedp.Call(tab, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: e.RequestID})
		}
	})
	handlers.Go(func() {
		for e, err := range logins {
			if err != nil {
				return
			}
			b.note(&b.challenges, fmt.Sprintf("%s %s %s", e.AuthChallenge.Scheme, e.AuthChallenge.Realm, e.Request.URL))
			answer := &fetch.AuthChallengeResponse{Response: fetch.AuthChallengeResponseResponseCancelAuth}
			if o.User != "" {
				answer = &fetch.AuthChallengeResponse{Response: fetch.AuthChallengeResponseResponseProvideCredentials, Username: o.User, Password: o.Password}
			}
			chromedp.Call(tab, fetch.ContinueWithAuth, fetch.ContinueWithAuthParams{RequestID: e.RequestID, AuthChallengeResponse: answer})
		}
	})
	// Every request pauses, so that a login challenge reaches the handler above.
	_, err := chromedp.Call(tab, fetch.Enable, fetch.EnableParams{HandleAuthRequests: new(true), Patterns: []*fetch.RequestPattern{{URLPattern: "*"}}})
	b.Must("Fetch.enable", err)
	_, err = chromedp.Call(tab, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: cspProbe})
	b.Must("Page.addScriptToEvaluateOnNewDocument", err)
	return b
}

func (b *Browser) note(list *[]string, s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	*list = append(*list, s)
}

// Context is the tab's chromedp context, for what this type has no helper for.
func (b *Browser) Context() context.Context { return b.ctx }

// Must fails the test on err, naming what failed.
func (b *Browser) Must(what string, err error) {
	b.t.Helper()
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// limited is the tab's context bounded for one command.
func (b *Browser) limited() (context.Context, context.CancelFunc) {
	return context.WithTimeout(b.ctx, commandLimit)
}

// Navigate opens url in the tab and fails the test when it cannot be loaded.
func (b *Browser) Navigate(url string) {
	b.t.Helper()
	ctx, cancel := b.limited()
	defer cancel()
	nav, err := chromedp.Call(ctx, page.Navigate, page.NavigateParams{URL: url})
	b.Must("navigate to "+url, err)
	if nav.ErrorText != "" {
		b.t.Fatalf("navigate to %s: %s", url, nav.ErrorText)
	}
}

// Eval runs a JavaScript expression in the page, waits for its promise, and decodes its
// value into out (when not nil).
func (b *Browser) Eval(expr string, out any) error {
	ctx, cancel := b.limited()
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		return fmt.Errorf("%s: %w", expr, err)
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
	b.Must("text of "+selector, b.Eval(fmt.Sprintf(`(document.querySelector(%s) || {}).textContent || ""`, JSString(selector)), &s))
	return s
}

// WaitFor polls a JavaScript condition until it is true, and after timeout fails with
// what the page showed.
func (b *Browser) WaitFor(timeout time.Duration, what, expr string) {
	b.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		var ok bool
		err := b.Eval(expr, &ok)
		if err == nil && ok {
			return
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			var shown string
			b.Eval(`document.body ? document.body.innerText : ""`, &shown)
			b.t.Fatalf("timed out after %s waiting for %s (%s; last error: %v); the page shows:\n%s", timeout, what, expr, err, shown)
		}
	}
}

// Click clicks the middle of an element with the mouse, as a user would, once it is
// there, shown, enabled and not covered by another element.
func (b *Browser) Click(selector string) {
	b.t.Helper()
	var at struct {
		Found, Hit, Disabled bool
		X, Y                 float64
	}
	probe := fmt.Sprintf(`(() => {
		const e = document.querySelector(%s);
		if (!e) return {found: false};
		e.scrollIntoView({block: "center"});
		const r = e.getBoundingClientRect();
		const x = r.left + r.width / 2, y = r.top + r.height / 2;
		return {found: true, hit: e.contains(document.elementFromPoint(x, y)), disabled: !!e.disabled, x, y};
	})()`, JSString(selector))
	deadline := time.Now().Add(commandLimit)
	for {
		err := b.Eval(probe, &at)
		if err == nil && at.Found && at.Hit && !at.Disabled {
			break
		}
		if time.Now().After(deadline) {
			switch {
			case err != nil:
				b.t.Fatalf("click %s: %v", selector, err)
			case !at.Found:
				b.t.Fatalf("click %s: no such element", selector)
			case !at.Hit:
				b.t.Fatalf("click %s: hidden or covered by another element", selector)
			default:
				b.t.Fatalf("click %s: disabled", selector)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, typ := range []input.DispatchMouseEventType{input.DispatchMouseEventTypeMouseMoved, input.DispatchMouseEventTypeMousePressed, input.DispatchMouseEventTypeMouseReleased} {
		ctx, cancel := b.limited()
		_, err := chromedp.Call(ctx, input.DispatchMouseEvent, input.DispatchMouseEventParams{Type: typ, X: at.X, Y: at.Y, Button: input.MouseButtonLeft, ClickCount: 1})
		cancel()
		b.Must("click "+selector, err)
	}
}

// Type replaces the value of a field with text, typed through the browser's input
// pipeline so that the page sees the events a keyboard would cause.
func (b *Browser) Type(selector, text string) {
	b.t.Helper()
	var found bool
	if err := b.Eval(fmt.Sprintf(`(() => { const e = document.querySelector(%s); if (!e) return false; e.value = ""; e.focus(); return true; })()`, JSString(selector)), &found); err != nil || !found {
		b.t.Fatalf("type into %s: %v (found: %v)", selector, err, found)
	}
	ctx, cancel := b.limited()
	defer cancel()
	_, err := chromedp.Call(ctx, input.InsertText, input.InsertTextParams{Text: text})
	b.Must("type into "+selector, err)
}

// Screenshot saves a PNG of the element selector picks, or of the whole page when
// selector is empty.
func (b *Browser) Screenshot(path, selector string) {
	b.t.Helper()
	shot := chromedp.FullScreenshot(100)
	if selector != "" {
		shot = chromedp.Screenshot(chromedp.CSS(selector))
	}
	ctx, cancel := b.limited()
	defer cancel()
	png, err := chromedp.Run(ctx, shot)
	b.Must("screenshot", err)
	b.Must("screenshot", os.WriteFile(path, png, 0o644))
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
