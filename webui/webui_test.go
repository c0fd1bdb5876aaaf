package webui

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"faasd/api"
)

func serve(t *testing.T, method, path string, header http.Header) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, req)
	return rec.Result()
}

func TestFilesServedWithTheirTypesAndPolicy(t *testing.T) {
	for _, tc := range []struct {
		path, contentType, contains string
	}{
		{"/ui/", "text/html; charset=utf-8", "<title>faasd</title>"},
		{"/ui/index.html", "text/html; charset=utf-8", "<title>faasd</title>"},
		{"/ui/app.js", "text/javascript; charset=utf-8", "/system/functions"},
		{"/ui/style.css", "text/css; charset=utf-8", "font"},
	} {
		resp := serve(t, "GET", tc.path, nil)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || !strings.Contains(string(body), tc.contains) {
			t.Errorf("%s: %d, body lacks %q", tc.path, resp.StatusCode, tc.contains)
		}
		h := resp.Header
		if got := h.Get("Content-Type"); got != tc.contentType {
			t.Errorf("%s: Content-Type %q, want %q", tc.path, got, tc.contentType)
		}
		if got := h.Get("Cache-Control"); got != "no-cache" {
			t.Errorf("%s: Cache-Control %q", tc.path, got)
		}
		csp := h.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'self'", "script-src 'self';", "object-src 'none'", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: Content-Security-Policy %q lacks %q", tc.path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe") {
			t.Errorf("%s: Content-Security-Policy allows unsafe code: %q", tc.path, csp)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("ETag") == "" {
			t.Errorf("%s: headers %v", tc.path, h)
		}
	}
}

func TestUnknownPathsAre404(t *testing.T) {
	for _, path := range []string{"/ui/nope.js", "/ui/static/app.js", "/ui/../webui.go", "/ui/app.js/", "/other", "/"} {
		if resp := serve(t, "GET", path, nil); resp.StatusCode != 404 {
			t.Errorf("%s: %d, want 404", path, resp.StatusCode)
		}
	}
}

func TestHeadAndRevalidation(t *testing.T) {
	resp := serve(t, "HEAD", "/ui/app.js", nil)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || len(body) != 0 || resp.Header.Get("Content-Length") == "" {
		t.Errorf("HEAD: %d, %d bytes, %v", resp.StatusCode, len(body), resp.Header)
	}
	// no-cache means revalidate: an unchanged file costs a 304.
	etag := resp.Header.Get("ETag")
	if resp := serve(t, "GET", "/ui/app.js", http.Header{"If-None-Match": {etag}}); resp.StatusCode != 304 {
		t.Errorf("If-None-Match %s: %d, want 304", etag, resp.StatusCode)
	}
}

func TestOnlyGetAndHead(t *testing.T) {
	resp := serve(t, "POST", "/ui/", nil)
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

// The page must work offline and under its own policy: everything it loads is one of its
// embedded files, and nothing is inline.
func TestPageLoadsOnlyItsOwnFiles(t *testing.T) {
	html := readStatic(t, "index.html")
	refs := regexp.MustCompile(`(?:src|href)="([^"]*)"`).FindAllStringSubmatch(html, -1)
	if len(refs) == 0 {
		t.Fatal("no references found in index.html")
	}
	for _, m := range refs {
		ref := m[1]
		if ref == "data:," || strings.HasPrefix(ref, "#") { // the empty favicon; links within the page
			continue
		}
		if _, ok := contentTypes[ref]; !ok {
			t.Errorf("index.html loads %q, which is not an embedded file", ref)
		}
	}
	for _, inline := range []string{"<style", " style=", " onclick=", " onload=", "javascript:"} {
		if strings.Contains(html, inline) {
			t.Errorf("index.html has inline code or style (%q), which the policy refuses", inline)
		}
	}
	if regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`).MatchString(html) {
		t.Error("index.html has an inline script")
	}
	for name := range contentTypes {
		// The SVG namespace is a name the browser never fetches.
		s := strings.ReplaceAll(readStatic(t, name), "'http://www.w3.org/2000/svg'", "")
		if regexp.MustCompile(`https?://`).MatchString(s) {
			t.Errorf("%s refers to another origin", name)
		}
	}
}

// Data reaches the page's DOM as text only; these are the ways it could become markup.
func TestScriptNeverRendersHTML(t *testing.T) {
	for name := range contentTypes {
		if !strings.HasSuffix(name, ".js") {
			continue
		}
		js := readStatic(t, name)
		for _, sink := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "createContextualFragment",
			"DOMParser", "document.write", "eval(", "new Function"} {
			if strings.Contains(js, sink) {
				t.Errorf("%s uses %s", name, sink)
			}
		}
	}
}

func readStatic(t *testing.T, name string) string {
	t.Helper()
	b, err := static.ReadFile("static/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The gateway refuses browser requests to /system without api.UIHeader, so the page must
// send exactly that header with every API call.
func TestPageSendsTheAPIHeader(t *testing.T) {
	js, err := static.ReadFile("static/app.js")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(js), "const API_HEADER = '"+api.UIHeader+"';") {
		t.Errorf("app.js does not name %s as API_HEADER", api.UIHeader)
	}
	// Every fetch of /system goes through api() or carries the header itself.
	for _, call := range regexp.MustCompile(`fetch\([^;]*`).FindAllString(string(js), -1) {
		if strings.Contains(call, "/function/") {
			continue
		}
		if !strings.Contains(call, "init") && !strings.Contains(call, "API_HEADER") {
			t.Errorf("a fetch without the API header: %s", call)
		}
	}
}
