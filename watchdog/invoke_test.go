package watchdog

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// onlyReader hides a reader's length so that the client sends the body chunked.
type onlyReader struct{ io.Reader }

func randomBytes(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(uint64(n), 42))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestCatReturnsBodyByteExact(t *testing.T) {
	t.Parallel()
	h := start(t, map[string]string{"fprocess": "cat"})
	every := make([]byte, 256)
	for i := range every {
		every[i] = byte(i)
	}
	tests := []struct {
		name    string
		body    []byte
		chunked bool
	}{
		{"empty", nil, false},
		{"certifier payload", []byte("openfaas-fn"), false},
		{"every byte value", every, false},
		{"secret with no trailing newline", []byte("s3cr3t"), false},
		{"just over a pipe buffer", randomBytes(64<<10 + 1), false},
		{"several MiB both ways at once", randomBytes(3 << 20), false},
		{"chunked", randomBytes(1<<20 + 7), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader = bytes.NewReader(tt.body)
			if tt.chunked {
				body = onlyReader{body}
			}
			resp, got := h.request(t, http.MethodPost, "/", body, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, body %q", resp.StatusCode, got)
			}
			if !bytes.Equal(got, tt.body) {
				t.Errorf("body differs: got %d bytes, want %d", len(got), len(tt.body))
			}
			if cl := resp.Header.Get("Content-Length"); cl != strconv.Itoa(len(tt.body)) {
				t.Errorf("Content-Length %q, want %d", cl, len(tt.body))
			}
			if d := resp.Header.Get("X-Duration-Seconds"); !regexp.MustCompile(`^\d+\.\d{6}$`).MatchString(d) {
				t.Errorf("X-Duration-Seconds %q, want seconds with 6 decimals", d)
			}
		})
	}
}

func TestChildThatStopsReadingStdinStillSucceeds(t *testing.T) {
	t.Parallel()
	h := start(t, map[string]string{"fprocess": "head -c 5"})
	body := randomBytes(1 << 20) // far more than the pipe holds: writes hit EPIPE
	resp, got := h.request(t, http.MethodPost, "/", bytes.NewReader(body), nil)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, body[:5]) {
		t.Fatalf("status %d body %q, want 200 and the first 5 bytes", resp.StatusCode, got)
	}
}

func TestChildEnvironment(t *testing.T) {
	t.Parallel()
	h := start(t, map[string]string{"fprocess": "env"}, "custom_env=custom_env_value", "Http_Method=spoofed")
	tests := []struct {
		name    string
		method  string
		path    string
		header  http.Header
		body    io.Reader
		want    map[string]string
		wantOut []string // variables that must be absent
	}{
		{
			name: "certifier GET", method: "GET", path: "/",
			want: map[string]string{
				"Http_Method": "GET", "Http_Path": "/", "Http_ContentLength": "0", "Http_Content_Length": "0",
				"custom_env": "custom_env_value", "Http_Host": h.host,
				"Http_User_Agent": "Go-http-client/1.1", "Http_Accept_Encoding": "gzip",
			},
			wantOut: []string{"Http_Query", "Http_Transfer_Encoding"},
		},
		{
			name: "query string and headers", method: "POST", path: "/sub/path?testing=1&b=%20x",
			header: http.Header{
				"Content-Type":    {"text/plain"},
				"X-Call-Id":       {"abc-123"},
				"X-Forwarded-For": {"10.0.0.1:4444", "ignored second value"},
			},
			body: strings.NewReader("hello"),
			want: map[string]string{
				"Http_Method": "POST", "Http_Query": "testing=1&b=%20x", "Http_Path": "/sub/path",
				"Http_Content_Type": "text/plain", "Http_X_Call_Id": "abc-123",
				"Http_X_Forwarded_For": "10.0.0.1:4444",
				"Http_ContentLength":   "5", "Http_Content_Length": "5",
			},
			wantOut: []string{"Http_ContentType", "Http_Transfer_Encoding"},
		},
		{
			name: "chunked body", method: "PUT", path: "/",
			body: onlyReader{strings.NewReader("hello")},
			want: map[string]string{
				"Http_Method": "PUT", "Http_Transfer_Encoding": "chunked",
				"Http_ContentLength": "-1", "Http_Content_Length": "-1",
			},
		},
		{name: "PATCH", method: "PATCH", path: "/", body: strings.NewReader("x"), want: map[string]string{"Http_Method": "PATCH"}},
		{name: "DELETE", method: "DELETE", path: "/", want: map[string]string{"Http_Method": "DELETE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, out := h.request(t, tt.method, tt.path, tt.body, tt.header)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, body %q", resp.StatusCode, out)
			}
			env := parseEnv(out)
			for k, v := range tt.want {
				if got, ok := env[k]; !ok || got != v {
					t.Errorf("%s=%q (set: %v), want %q", k, got, ok, v)
				}
			}
			for _, k := range tt.wantOut {
				if v, ok := env[k]; ok {
					t.Errorf("%s=%q is set, want it absent", k, v)
				}
			}
		})
	}
}

func TestCGIHeadersOff(t *testing.T) {
	t.Parallel()
	h := start(t, map[string]string{"fprocess": "env", "cgi_headers": "false"}, "custom_env=custom_env_value")
	resp, out := h.request(t, http.MethodGet, "/?testing=1", nil, http.Header{"X-Test": {"1"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	env := parseEnv(out)
	if env["custom_env"] != "custom_env_value" {
		t.Errorf("custom_env missing from %q", out)
	}
	for k := range env {
		if strings.HasPrefix(k, "Http_") && os.Getenv(k) == "" {
			t.Errorf("%s is set with cgi_headers=false", k)
		}
	}
}

func TestFailures(t *testing.T) {
	t.Parallel()
	fails := shScript(t, "echo out; echo err >&2; exit 3\n")
	succeedsNoisily := shScript(t, "echo out; echo err >&2\n")
	tests := []struct {
		name       string
		env        map[string]string
		wantStatus int
		wantBody   string // exact, unless wantPrefix
		wantPrefix bool
		wantLog    string
		wantNoLog  string
	}{
		{"non-zero exit is 500 with error then output", map[string]string{"fprocess": fails},
			500, "exit status 3\nout\nerr\n", false, "", "Wrote"},
		{"combine_output=false keeps stderr out of the body", map[string]string{"fprocess": fails, "combine_output": "false"},
			500, "exit status 3\nout\n", false, "stderr: err", "Wrote"},
		{"combine_output=false on success logs stderr", map[string]string{"fprocess": succeedsNoisily, "combine_output": "false"},
			200, "out\n", false, "stderr: err", ""},
		{"combined output on success", map[string]string{"fprocess": succeedsNoisily},
			200, "out\nerr\n", false, "Wrote 8 Bytes", "stderr:"},
		{"write_debug logs failures", map[string]string{"fprocess": fails, "write_debug": "true"},
			500, "exit status 3\n", true, "Success=false, Error=exit status 3", "Wrote"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := start(t, tt.env)
			resp, body := h.request(t, http.MethodPost, "/", strings.NewReader("in"), nil)
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if tt.wantPrefix && !strings.HasPrefix(string(body), tt.wantBody) ||
				!tt.wantPrefix && string(body) != tt.wantBody {
				t.Errorf("body %q, want %q", body, tt.wantBody)
			}
			logs := h.logs.String()
			if !strings.Contains(logs, "Forking fprocess.") {
				t.Errorf("log lacks Forking line:\n%s", logs)
			}
			if tt.wantLog != "" && !strings.Contains(logs, tt.wantLog) {
				t.Errorf("log lacks %q:\n%s", tt.wantLog, logs)
			}
			if tt.wantNoLog != "" && strings.Contains(logs, tt.wantNoLog) {
				t.Errorf("log has %q:\n%s", tt.wantNoLog, logs)
			}
		})
	}
}

func TestResponseContentType(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		configured string
		request    string
		body       string
		want       string
	}{
		{"content_type env wins", "application/json", "text/csv", "{}", "application/json"},
		{"request Content-Type echoed", "", "image/png", "x", "image/png"},
		{"sniffed otherwise", "", "", "<html><body>hi</body></html>", "text/html; charset=utf-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := start(t, map[string]string{"fprocess": "cat", "content_type": tt.configured})
			hdr := http.Header{}
			if tt.request != "" {
				hdr.Set("Content-Type", tt.request)
			}
			resp, _ := h.request(t, http.MethodPost, "/", strings.NewReader(tt.body), hdr)
			if got := resp.Header.Get("Content-Type"); got != tt.want {
				t.Errorf("Content-Type %q, want %q", got, tt.want)
			}
		})
	}
}

func TestMethodsOtherThanTheFiveAreRejected(t *testing.T) {
	t.Parallel()
	h := start(t, map[string]string{"fprocess": "cat"})
	for _, m := range []string{http.MethodHead, http.MethodOptions, "PROPFIND"} {
		resp, _ := h.request(t, m, "/", nil, nil)
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s: status %d, want 405", m, resp.StatusCode)
		}
		if a := resp.Header.Get("Allow"); a != allowedMethods {
			t.Errorf("%s: Allow %q", m, a)
		}
	}
	if strings.Contains(h.logs.String(), "Forking") {
		t.Errorf("a rejected method forked the function:\n%s", h.logs)
	}
}

func TestLogLinesMatchTheCertifier(t *testing.T) {
	t.Parallel()
	h := start(t, map[string]string{"fprocess": "cat"})
	resp, body := h.request(t, http.MethodPost, "/", strings.NewReader("openfaas-fn"), nil)
	if resp.StatusCode != 200 || string(body) != "openfaas-fn" {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	const stamp = `^\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} `
	want := []*regexp.Regexp{
		regexp.MustCompile(stamp + `Forking fprocess\.$`),
		regexp.MustCompile(stamp + `Wrote 11 Bytes - Duration: \d+\.\d{6}s$`),
	}
	lines := logLines(h.logs)
	for _, re := range want {
		found := false
		for _, l := range lines {
			found = found || re.MatchString(l)
		}
		if !found {
			t.Errorf("no log line matches %s in:\n%s", re, h.logs)
		}
	}
	// What the certifier does: strip digits, slashes, colons and spaces, then prefix-match.
	for _, prefix := range []string{"Forking fprocess", "Wrote 11 Bytes"} {
		found := false
		for _, l := range lines {
			found = found || strings.HasPrefix(strings.TrimLeft(l, "0123456789/: "), prefix)
		}
		if !found {
			t.Errorf("certifier would not find %q in:\n%s", prefix, h.logs)
		}
	}
}

func TestWriteDebugLogsOutputAndDuration(t *testing.T) {
	t.Parallel()
	h := start(t, map[string]string{"fprocess": "cat", "write_debug": "true"})
	resp, body := h.request(t, http.MethodPost, "/", strings.NewReader("debug me"), nil)
	if resp.StatusCode != 200 || string(body) != "debug me" {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	logs := h.logs.String()
	if !strings.Contains(logs, " debug me\n") || !regexp.MustCompile(`(?m) Duration: \d+\.\d{6}s$`).MatchString(logs) {
		t.Errorf("log lacks output or Duration line:\n%s", logs)
	}
	if strings.Contains(logs, "Wrote") {
		t.Errorf("write_debug should replace the Wrote line:\n%s", logs)
	}
}

func TestDebugHeadersLogsBothDirections(t *testing.T) {
	t.Parallel()
	h := start(t, map[string]string{"fprocess": "cat", "debug_headers": "true"})
	h.request(t, http.MethodPost, "/", strings.NewReader("x"), http.Header{"X-Trace": {"t1"}})
	logs := h.logs.String()
	if !strings.Contains(logs, "[in] X-Trace=[t1]") || !strings.Contains(logs, "[out] X-Duration-Seconds=") {
		t.Errorf("headers not logged:\n%s", logs)
	}
}

func TestMarshalRequestSendsEnvelope(t *testing.T) {
	t.Parallel()
	h := start(t, map[string]string{"fprocess": "cat", "marshal_request": "true"})
	payload := randomBytes(100)
	resp, out := h.request(t, http.MethodPost, "/", bytes.NewReader(payload), http.Header{"X-Test": {"yes"}})
	if resp.StatusCode != 200 {
		t.Fatalf("status %d body %q", resp.StatusCode, out)
	}
	var got marshalledRequest
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("stdin was not the JSON envelope: %v: %q", err, out)
	}
	if got.Header.Get("X-Test") != "yes" || !bytes.Equal(got.Body.Raw, payload) {
		t.Errorf("envelope %+v does not carry the request", got)
	}
}

func TestRelativeCommandResolvesAgainstWorkingDirectory(t *testing.T) {
	// Not parallel: t.Chdir changes the whole process's directory. Being serial also means
	// no other test forks while the script is open for writing, so exec'ing it directly
	// cannot hit ETXTBSY.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "handler"), []byte("#!/bin/sh\necho handled\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	h := start(t, map[string]string{"fprocess": "./handler"})
	resp, body := h.request(t, http.MethodGet, "/", nil, nil)
	if resp.StatusCode != 200 || string(body) != "handled\n" {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
}

func TestRequestBodyLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		size       int
		chunked    bool
		wantStatus int
		wantFork   bool
	}{
		{"at the limit", 1024, false, 200, true},
		{"chunked at the limit", 1024, true, 200, true},
		{"declared length over the limit is refused before forking", 1025, false, 413, false},
		{"chunked body over the limit", 4096, true, 413, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := start(t, map[string]string{"fprocess": "cat", "max_body_bytes": "1Ki"})
			payload := randomBytes(tt.size)
			var body io.Reader = bytes.NewReader(payload)
			if tt.chunked {
				body = onlyReader{body}
			}
			resp, got := h.request(t, http.MethodPost, "/", body, nil)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d (body %q)", resp.StatusCode, tt.wantStatus, got)
			}
			if tt.wantStatus == 200 && !bytes.Equal(got, payload) {
				t.Errorf("body differs")
			}
			if tt.wantStatus == 413 && !strings.Contains(string(got), "1024 bytes") {
				t.Errorf("413 body %q does not state the limit", got)
			}
			if forked := strings.Contains(h.logs.String(), "Forking fprocess."); forked != tt.wantFork {
				t.Errorf("forked=%v, want %v:\n%s", forked, tt.wantFork, h.logs)
			}
			if tt.wantStatus == 413 && strings.Contains(h.logs.String(), "Wrote") {
				t.Errorf("an over-long body reached a successful run:\n%s", h.logs)
			}
		})
	}
}

func TestMaxInflight(t *testing.T) {
	t.Parallel()
	h := start(t, map[string]string{"fprocess": "cat", "max_inflight": "1"})

	// Hold one invocation open: cat waits for the rest of a body we have not sent yet.
	pr, pw := io.Pipe()
	first := make(chan []byte, 1)
	go func() {
		resp, err := h.client.Post(h.url+"/", "text/plain", pr)
		if err != nil {
			first <- []byte(err.Error())
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		first <- b
	}()
	pw.Write([]byte("held "))
	waitFor(t, "the first invocation to fork", func() bool {
		return strings.Contains(h.logs.String(), "Forking fprocess.")
	})

	resp, body := h.request(t, http.MethodPost, "/", strings.NewReader("second"), nil)
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("second request: status %d, want 429", resp.StatusCode)
	}
	if want := "Concurrent request limit exceeded. Max concurrent requests: 1\n"; string(body) != want {
		t.Errorf("429 body %q, want %q", body, want)
	}

	pw.Write([]byte("open"))
	pw.Close()
	if got := <-first; string(got) != "held open" {
		t.Errorf("first request got %q", got)
	}
	resp, _ = h.request(t, http.MethodPost, "/", strings.NewReader("third"), nil)
	if resp.StatusCode != 200 {
		t.Errorf("after the first finished: status %d, want 200", resp.StatusCode)
	}
}

// groupScript starts a background job in the function's process group, publishes both pids
// and waits: killing only the shell would leave the sleep behind.
const groupScript = `echo $$ > "$PIDDIR/leader.tmp" && mv "$PIDDIR/leader.tmp" "$PIDDIR/leader"
sleep 1000 &
echo $! > "$PIDDIR/bg.tmp" && mv "$PIDDIR/bg.tmp" "$PIDDIR/bg"
wait
`

func TestExecTimeoutKillsWholeProcessGroup(t *testing.T) {
	t.Parallel()
	pidDir := t.TempDir()
	fprocess := shScript(t, groupScript)
	// exec_timeout is generous so the script surely publishes its pids before it is killed.
	h := start(t, map[string]string{"fprocess": fprocess, "exec_timeout": "1s"}, "PIDDIR="+pidDir)
	resp, body := h.request(t, http.MethodGet, "/", nil, nil)
	if resp.StatusCode != http.StatusRequestTimeout || string(body) != "Killed process.\n" {
		t.Errorf("status %d body %q, want 408 %q", resp.StatusCode, body, "Killed process.\n")
	}
	leader, bg := readPID(t, filepath.Join(pidDir, "leader")), readPID(t, filepath.Join(pidDir, "bg"))
	waitFor(t, "the function's shell and its background sleep to die", func() bool {
		return processGone(leader) && processGone(bg)
	})
	if !strings.Contains(h.logs.String(), "Killing process: "+fprocess+"\n") {
		t.Errorf("log lacks the Killing line:\n%s", h.logs)
	}
	if strings.Contains(h.logs.String(), "Wrote") {
		t.Errorf("a killed run logged Wrote:\n%s", h.logs)
	}
}

func TestSleepKilledByExecTimeout(t *testing.T) {
	t.Parallel()
	h := start(t, map[string]string{"fprocess": "sleep 1000", "exec_timeout": "100ms"})
	resp, body := h.request(t, http.MethodGet, "/", nil, nil)
	if resp.StatusCode != http.StatusRequestTimeout || string(body) != "Killed process.\n" {
		t.Errorf("status %d body %q, want 408", resp.StatusCode, body)
	}
}

func TestBackgroundJobsDoNotOutliveTheRequest(t *testing.T) {
	t.Parallel()
	pidDir := t.TempDir()
	// The job's output goes elsewhere, so nothing holds the response open: only the group
	// kill after the shell exits stops it.
	fprocess := shScript(t, `sleep 1000 >/dev/null 2>&1 &
echo $! > "$PIDDIR/bg.tmp" && mv "$PIDDIR/bg.tmp" "$PIDDIR/bg"
echo done
`)
	h := start(t, map[string]string{"fprocess": fprocess}, "PIDDIR="+pidDir)
	resp, body := h.request(t, http.MethodGet, "/", nil, nil)
	if resp.StatusCode != 200 || string(body) != "done\n" {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	bg := readPID(t, filepath.Join(pidDir, "bg"))
	waitFor(t, "the background sleep to be killed", func() bool { return processGone(bg) })
}

func TestClientDisconnectKillsProcessGroup(t *testing.T) {
	t.Parallel()
	pidDir := t.TempDir()
	h := start(t, map[string]string{"fprocess": shScript(t, groupScript)}, "PIDDIR="+pidDir)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.url+"/", nil)
		resp, err := h.client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	leader, bg := readPID(t, filepath.Join(pidDir, "leader")), readPID(t, filepath.Join(pidDir, "bg"))
	cancel()
	if err := <-errc; err == nil {
		t.Errorf("request succeeded after the client cancelled it")
	}
	waitFor(t, "the function's process group to die after the client left", func() bool {
		return processGone(leader) && processGone(bg)
	})
	waitFor(t, "the disconnect to be logged", func() bool {
		return strings.Contains(h.logs.String(), "Client disconnected, killing process: ")
	})
}

func TestWriteTimeoutKillsProcessThatCanNoLongerAnswer(t *testing.T) {
	t.Parallel()
	pidDir := t.TempDir()
	h := start(t, map[string]string{"fprocess": shScript(t, groupScript), "write_timeout": "1s"}, "PIDDIR="+pidDir)
	go func() {
		// The response is lost with the write deadline; only the kill matters here.
		resp, err := h.client.Get(h.url + "/")
		if err == nil {
			resp.Body.Close()
		}
	}()
	leader, bg := readPID(t, filepath.Join(pidDir, "leader")), readPID(t, filepath.Join(pidDir, "bg"))
	waitFor(t, "the process group to be killed at the write timeout", func() bool {
		return processGone(leader) && processGone(bg)
	})
	waitFor(t, "the kill to be logged", func() bool {
		return strings.Contains(h.logs.String(), "Write timeout (1s) exceeded, killing process: ")
	})
}

func TestNoZombiesOrStrayChildren(t *testing.T) {
	// Not parallel, so every child of this test process below is one of ours.
	h := start(t, map[string]string{"fprocess": "head -c 3", "exec_timeout": "5s"})
	for i := range 10 {
		resp, _ := h.request(t, http.MethodPost, "/", bytes.NewReader(randomBytes(100_000+i)), nil)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	fail := start(t, map[string]string{"fprocess": shScript(t, "exit 7\n")})
	slow := start(t, map[string]string{"fprocess": "sleep 1000", "exec_timeout": "50ms"})
	for range 5 {
		fail.request(t, http.MethodGet, "/", nil, nil)
		slow.request(t, http.MethodGet, "/", nil, nil)
	}
	// Every response is written after its child was reaped, so nothing may remain.
	if kids := childrenOfTest(t); len(kids) != 0 {
		t.Errorf("children left after the requests completed: %v", kids)
	}
}

func TestExecTimeoutAnswersWhileUploadStalls(t *testing.T) {
	t.Parallel()
	// cat waits for a body the client never finishes; the timeout must still answer, not
	// wait for read_timeout (30 s) to give up on the body.
	h := start(t, map[string]string{"fprocess": "cat", "exec_timeout": "200ms"})
	pr := stalledBody(t)
	resp, body := h.request(t, http.MethodPost, "/", pr, nil)
	if resp.StatusCode != http.StatusRequestTimeout || string(body) != "Killed process.\n" {
		t.Errorf("status %d body %q, want 408", resp.StatusCode, body)
	}
}

func TestEarlyExitDoesNotWaitForStalledUpload(t *testing.T) {
	t.Parallel()
	h := start(t, map[string]string{"fprocess": "echo early"})
	pr := stalledBody(t)
	resp, body := h.request(t, http.MethodPost, "/", pr, nil)
	if resp.StatusCode != http.StatusOK || string(body) != "early\n" {
		t.Errorf("status %d body %q, want 200 %q", resp.StatusCode, body, "early\n")
	}
}

// stalledBody is a request body that sends a few bytes and then nothing. It ends only well
// after the client's own timeout, so that a server waiting for it fails the test instead of
// hanging it (the client's write loop would otherwise block on it forever).
func stalledBody(t *testing.T) io.Reader {
	pr, pw := io.Pipe()
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	go func() {
		pw.Write([]byte("partial"))
		select {
		case <-done:
		case <-time.After(2 * waitTimeout):
		}
		pw.Close()
	}()
	return pr
}

func TestKeepAliveSurvivesChildrenThatIgnoreStdin(t *testing.T) {
	t.Parallel()
	// The child exits without reading its stdin, racing the end of the body; whatever the
	// watchdog does to stop reading that body must not poison the next request on the same
	// connection.
	h := start(t, map[string]string{"fprocess": "echo hi"})
	h.client.Transport.(*http.Transport).MaxConnsPerHost = 1
	for i := range 60 {
		method := []string{http.MethodPost, http.MethodDelete, http.MethodGet}[i%3]
		var body io.Reader
		if method == http.MethodPost {
			body = strings.NewReader("ignored")
		}
		resp, got := h.request(t, method, "/", body, nil)
		if resp.StatusCode != 200 || string(got) != "hi\n" {
			t.Fatalf("request %d (%s): status %d body %q", i, method, resp.StatusCode, got)
		}
	}
}
