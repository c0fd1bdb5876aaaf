package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"faasd/internal/testkit"
)

// chromiumPath is Debian's Chromium, which scripts/install-deps.sh installs.
const chromiumPath = "/usr/bin/chromium"

// browser is a headless Chromium driven over the Chrome DevTools Protocol. The protocol
// runs on a pair of pipes (--remote-debugging-pipe: Chromium reads commands on fd 3 and
// writes on fd 4, one JSON message per NUL-terminated frame), as Puppeteer's pipe mode
// does: no port to discover, no websocket library, and nobody else on the host can
// connect to it.
type browser struct {
	t          *testing.T
	stderr     *testkit.SyncBuffer
	toChromium *os.File
	exited     chan struct{}
	readEnd    chan struct{} // closed when Chromium's pipe reaches its end
	session    string        // the page's CDP session

	writeMu sync.Mutex
	nextID  atomic.Int64
	mu      sync.Mutex
	pending map[int64]chan cdpMessage
	events  map[string]func(params json.RawMessage)
}

type cdpMessage struct {
	ID        int64           `json:"id,omitempty"`
	Method    string          `json:"method,omitempty"`
	Params    json.RawMessage `json:"params,omitempty"`
	SessionID string          `json:"sessionId,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

// startBrowser starts Chromium with a fresh profile, bounded by limit, and attaches to a
// blank page. It fails the test when Chromium is not installed: the web UI is only
// proven by a real browser.
func startBrowser(t *testing.T, limit time.Duration) *browser {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("the web UI test needs Chromium (scripts/install-deps.sh installs the Debian package chromium): %v", err)
	}
	profile := t.TempDir()
	// Commands go down one pipe and answers come up the other.
	cmdR, cmdW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	cmd := exec.CommandContext(ctx, chromiumPath,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+profile, "--remote-debugging-pipe", "--window-size=1200,900",
		"about:blank")
	cmd.ExtraFiles = []*os.File{cmdR, outW} // fds 3 and 4
	b := &browser{t: t, stderr: &testkit.SyncBuffer{}, toChromium: cmdW, exited: make(chan struct{}),
		readEnd: make(chan struct{}), pending: map[int64]chan cdpMessage{}, events: map[string]func(json.RawMessage){}}
	cmd.Stdout, cmd.Stderr = b.stderr, b.stderr
	// Its own process group, so that the renderer and GPU helpers go with it when the
	// limit is reached; and gone with the test binary if that dies first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if err := cmd.Start(); err != nil {
		cancel()
		for _, f := range []*os.File{cmdR, cmdW, outR, outW} {
			f.Close()
		}
		t.Fatalf("start %s: %v", chromiumPath, err)
	}
	cmdR.Close()
	outW.Close()
	go func() {
		cmd.Wait()
		cancel()
		close(b.exited)
	}()
	go b.read(outR)
	t.Cleanup(func() {
		b.send("Browser.close", nil, "")
		select {
		case <-b.exited:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-b.exited
		}
		// Helpers that outlived the browser process would hold the profile directory.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmdW.Close()
		if t.Failed() {
			t.Logf("chromium output:\n%s", b.stderr.String())
		}
	})

	var target struct {
		TargetID string `json:"targetId"`
	}
	b.call("Target.createTarget", map[string]any{"url": "about:blank"}, "", &target)
	var attached struct {
		SessionID string `json:"sessionId"`
	}
	b.call("Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, "", &attached)
	b.session = attached.SessionID
	return b
}

// answerLogins lets every request of the page go on and answers every basic-auth
// challenge with user and password, as a user typing them at the prompt would. seen, when
// not nil, hears of each challenge as "scheme realm url".
func (b *browser) answerLogins(user, password string, seen func(challenge string)) {
	b.on("Fetch.requestPaused", func(p json.RawMessage) {
		var e struct {
			RequestID string `json:"requestId"`
		}
		json.Unmarshal(p, &e)
		b.send("Fetch.continueRequest", map[string]any{"requestId": e.RequestID}, b.session)
	})
	b.on("Fetch.authRequired", func(p json.RawMessage) {
		var e struct {
			RequestID string `json:"requestId"`
			Request   struct{ URL string }
			Challenge struct{ Scheme, Realm string } `json:"authChallenge"`
		}
		json.Unmarshal(p, &e)
		if seen != nil {
			seen(fmt.Sprintf("%s %s %s", e.Challenge.Scheme, e.Challenge.Realm, e.Request.URL))
		}
		b.send("Fetch.continueWithAuth", map[string]any{"requestId": e.RequestID, "authChallengeResponse": map[string]any{
			"response": "ProvideCredentials", "username": user, "password": password,
		}}, b.session)
	})
	b.page("Fetch.enable", map[string]any{"handleAuthRequests": true, "patterns": []map[string]any{{"urlPattern": "*"}}}, nil)
}

// read dispatches what Chromium writes: answers to their callers, events to handlers.
// Handlers run here, so they may send but must never wait for an answer.
func (b *browser) read(r io.ReadCloser) {
	defer close(b.readEnd)
	defer r.Close()
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		frame, err := br.ReadBytes(0)
		if err != nil {
			return
		}
		var msg cdpMessage
		if err := json.Unmarshal(frame[:len(frame)-1], &msg); err != nil {
			continue
		}
		b.mu.Lock()
		if msg.ID != 0 {
			if ch, ok := b.pending[msg.ID]; ok {
				delete(b.pending, msg.ID)
				ch <- msg
			}
		} else if h := b.events[msg.Method]; h != nil {
			h(msg.Params)
		}
		b.mu.Unlock()
	}
}

// on registers the handler of an event of the page's session.
func (b *browser) on(method string, h func(params json.RawMessage)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.events[method] = h
}

// send writes a command without waiting for its answer.
func (b *browser) send(method string, params any, session string) {
	b.write(b.nextID.Add(1), method, params, session)
}

func (b *browser) write(id int64, method string, params any, session string) {
	m := map[string]any{"id": id, "method": method}
	if params != nil {
		m["params"] = params
	}
	if session != "" {
		m["sessionId"] = session
	}
	frame, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	b.writeMu.Lock()
	defer b.writeMu.Unlock()
	b.toChromium.Write(append(frame, 0))
}

// call sends a command and decodes its result into out (when not nil).
func (b *browser) call(method string, params any, session string, out any) {
	b.t.Helper()
	if err := b.tryCall(method, params, session, out); err != nil {
		b.t.Fatal(err)
	}
}

func (b *browser) tryCall(method string, params any, session string, out any) error {
	id := b.nextID.Add(1)
	ch := make(chan cdpMessage, 1)
	b.mu.Lock()
	b.pending[id] = ch
	b.mu.Unlock()
	b.write(id, method, params, session)
	select {
	case msg := <-ch:
		if msg.Error != nil {
			return fmt.Errorf("cdp %s: %d %s", method, msg.Error.Code, msg.Error.Message)
		}
		if out != nil {
			return json.Unmarshal(msg.Result, out)
		}
		return nil
	case <-b.readEnd:
		return fmt.Errorf("cdp %s: chromium is gone", method)
	case <-time.After(20 * time.Second):
		return fmt.Errorf("cdp %s: no answer in 20s", method)
	}
}

// page calls a command in the page's session.
func (b *browser) page(method string, params any, out any) {
	b.t.Helper()
	b.call(method, params, b.session, out)
}

// eval runs a JavaScript expression in the page, waits for its promise, and decodes its
// value into out.
func (b *browser) eval(expr string, out any) error {
	var res struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	err := b.tryCall("Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true}, b.session, &res)
	if err != nil {
		return err
	}
	if e := res.ExceptionDetails; e != nil {
		return fmt.Errorf("%s: %s %s", expr, e.Text, e.Exception.Description)
	}
	if out == nil || len(res.Result.Value) == 0 {
		return nil
	}
	return json.Unmarshal(res.Result.Value, out)
}

// text returns the textContent of the element selector picks, or "" when there is none.
func (b *browser) text(selector string) string {
	b.t.Helper()
	var s string
	if err := b.eval(fmt.Sprintf(`(document.querySelector(%s) || {}).textContent || ""`, jsString(selector)), &s); err != nil {
		b.t.Fatal(err)
	}
	return s
}

// waitFor polls a JavaScript condition until it is true, and on timeout fails with what
// the page showed.
func (b *browser) waitFor(what, expr string) {
	b.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var lastErr error
	for time.Now().Before(deadline) {
		var ok bool
		if lastErr = b.eval(expr, &ok); lastErr == nil && ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	var shown string
	b.eval(`document.body ? document.body.innerText : ""`, &shown)
	b.t.Fatalf("timed out waiting for %s (%s; last error: %v); the page shows:\n%s", what, expr, lastErr, shown)
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
	for _, typ := range []string{"mouseMoved", "mousePressed", "mouseReleased"} {
		b.page("Input.dispatchMouseEvent", map[string]any{"type": typ, "x": at.X, "y": at.Y, "button": "left", "clickCount": 1}, nil)
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
	b.page("Input.insertText", map[string]any{"text": text}, nil)
}

func jsString(s string) string {
	q, _ := json.Marshal(s)
	return string(q)
}
