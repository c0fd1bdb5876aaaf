package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"faasd/internal/testkit"
)

// chromiumPath is Debian's Chromium, which scripts/install-deps.sh installs.
const chromiumPath = "/usr/bin/chromium"

// commandLimit bounds one DevTools command, so that a hung browser fails the test with the
// command's name rather than at the test's deadline.
const commandLimit = 20 * time.Second

// browser is a headless Chromium with one tab, driven by chromedp over the DevTools
// protocol on a pair of pipes: no port, so nobody else on the host can connect to it.
type browser struct {
	t   *testing.T
	ctx context.Context // the tab's
	out *testkit.SyncBuffer
}

// startBrowser starts Chromium with a fresh profile, bounded by limit, and opens a blank
// tab. It fails the test when Chromium is not installed: the web UI is only proven by a
// real browser.
func startBrowser(t *testing.T, limit time.Duration) *browser {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("the web UI test needs Chromium (scripts/install-deps.sh installs the Debian package chromium): %v", err)
	}
	b := &browser{t: t, out: &testkit.SyncBuffer{}}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1200, 900),
		chromedp.CombinedOutput(b.out),
	)
	tab, cancelTab := chromedp.NewContext(alloc)
	b.ctx = tab
	// The cleanups run in reverse: the tab closes, then the browser stops, and its
	// helpers with it, before t.TempDir removes the profile.
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		cancel()
		if t.Failed() {
			t.Logf("chromium output:\n%s", b.out.String())
		}
	})
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("start %s: %v\n%s", chromiumPath, err, b.out.String())
	}
	return b
}

// answerLogins lets every request of the tab go on and answers every basic-auth
// challenge with user and password, as a user typing them at the prompt would, until the
// test ends. seen, when not nil, hears of each challenge as "scheme realm url".
func (b *browser) answerLogins(user, password string, seen func(challenge string)) {
	b.t.Helper()
	events, stop := context.WithCancel(b.ctx)
	paused := chromedp.Events(events, fetch.RequestPaused)
	authRequired := chromedp.Events(events, fetch.AuthRequired)
	var handlers sync.WaitGroup
	b.t.Cleanup(func() {
		stop() // ends the iterators
		handlers.Wait()
	})
	handlers.Go(func() {
		for e, err := range paused {
			if err != nil {
				return
			}
			chromedp.Call(b.ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: e.RequestID})
		}
	})
	handlers.Go(func() {
		for e, err := range authRequired {
			if err != nil {
				return
			}
			if seen != nil {
				seen(fmt.Sprintf("%s %s %s", e.AuthChallenge.Scheme, e.AuthChallenge.Realm, e.Request.URL))
			}
			chromedp.Call(b.ctx, fetch.ContinueWithAuth, fetch.ContinueWithAuthParams{RequestID: e.RequestID, AuthChallengeResponse: &fetch.AuthChallengeResponse{
				Response: fetch.AuthChallengeResponseResponseProvideCredentials, Username: user, Password: password,
			}})
		}
	})
	_, err := chromedp.Call(b.ctx, fetch.Enable, fetch.EnableParams{HandleAuthRequests: new(true), Patterns: []*fetch.RequestPattern{{URLPattern: "*"}}})
	b.must("Fetch.enable", err)
}

// navigate opens url in the tab and fails the test when it cannot be loaded.
func (b *browser) navigate(url string) {
	b.t.Helper()
	nav, err := chromedp.Call(b.ctx, page.Navigate, page.NavigateParams{URL: url})
	b.must("navigate to "+url, err)
	if nav.ErrorText != "" {
		b.t.Fatalf("navigate to %s: %s", url, nav.ErrorText)
	}
}

// must fails the test on err, naming what failed.
func (b *browser) must(what string, err error) {
	b.t.Helper()
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// limited is the tab's context bounded for one command.
func (b *browser) limited() (context.Context, context.CancelFunc) {
	return context.WithTimeout(b.ctx, commandLimit)
}

// eval runs a JavaScript expression in the page, waits for its promise, and decodes its
// value into out (when not nil).
func (b *browser) eval(expr string, out any) error {
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

// text returns the textContent of the element selector picks, or "" when there is none.
func (b *browser) text(selector string) string {
	b.t.Helper()
	var s string
	b.must("text of "+selector, b.eval(fmt.Sprintf(`(document.querySelector(%s) || {}).textContent || ""`, jsString(selector)), &s))
	return s
}

// waitFor polls a JavaScript condition until it is true, and on timeout fails with what
// the page showed.
func (b *browser) waitFor(what, expr string) {
	b.t.Helper()
	deadline := time.NewTimer(commandLimit)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		var ok bool
		err := b.eval(expr, &ok)
		if err == nil && ok {
			return
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			var shown string
			b.eval(`document.body ? document.body.innerText : ""`, &shown)
			b.t.Fatalf("timed out waiting for %s (%s; last error: %v); the page shows:\n%s", what, expr, err, shown)
		}
	}
}

// click clicks the middle of an element with the mouse, as a user would, after checking
// that nothing covers it there.
func (b *browser) click(selector string) {
	b.t.Helper()
	var at struct {
		Found, Hit, Disabled bool
		X, Y                 float64
	}
	err := b.eval(fmt.Sprintf(`(() => {
		const e = document.querySelector(%s);
		if (!e) return {found: false};
		e.scrollIntoView({block: "center"});
		const r = e.getBoundingClientRect();
		const x = r.left + r.width / 2, y = r.top + r.height / 2;
		return {found: true, hit: e.contains(document.elementFromPoint(x, y)), disabled: !!e.disabled, x, y};
	})()`, jsString(selector)), &at)
	switch {
	case err != nil:
		b.t.Fatal(err)
	case !at.Found:
		b.t.Fatalf("click %s: no such element", selector)
	case !at.Hit:
		b.t.Fatalf("click %s: covered by another element", selector)
	case at.Disabled:
		b.t.Fatalf("click %s: disabled", selector)
	}
	for _, typ := range []input.DispatchMouseEventType{input.DispatchMouseEventTypeMouseMoved, input.DispatchMouseEventTypeMousePressed, input.DispatchMouseEventTypeMouseReleased} {
		ctx, cancel := b.limited()
		_, err := chromedp.Call(ctx, input.DispatchMouseEvent, input.DispatchMouseEventParams{Type: typ, X: at.X, Y: at.Y, Button: input.MouseButtonLeft, ClickCount: 1})
		cancel()
		b.must("click "+selector, err)
	}
}

// typeInto replaces the value of an input with text, typed through the browser's input
// pipeline so that the page sees the events a keyboard would cause.
func (b *browser) typeInto(selector, text string) {
	b.t.Helper()
	var found bool
	if err := b.eval(fmt.Sprintf(`(() => { const e = document.querySelector(%s); if (!e) return false; e.value = ""; e.focus(); return true; })()`, jsString(selector)), &found); err != nil || !found {
		b.t.Fatalf("type into %s: %v (found: %v)", selector, err, found)
	}
	ctx, cancel := b.limited()
	defer cancel()
	_, err := chromedp.Call(ctx, input.InsertText, input.InsertTextParams{Text: text})
	b.must("type into "+selector, err)
}

func jsString(s string) string {
	q, _ := json.Marshal(s)
	return string(q)
}
