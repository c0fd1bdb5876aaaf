package proxy

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestUIBehindAuthAndRootRedirects(t *testing.T) {
	ui := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ui " + r.URL.Path))
	})
	p := New(Options{Backends: routes{}, Credentials: &Credentials{User: "admin", Password: "pw"}, UI: ui})
	for _, tc := range []struct {
		method, path string
		auth         bool
		want         int
		location     string
	}{
		{"GET", "/", false, 307, "/ui/"},
		{"GET", "/ui", false, 307, "/ui/"},
		{"GET", "/ui/", false, 401, ""},
		{"GET", "/ui/app.js", false, 401, ""},
		{"GET", "/ui/", true, 200, ""},
		{"HEAD", "/ui/app.js", true, 200, ""},
		{"POST", "/ui/", true, 405, ""},
	} {
		req := httptest.NewRequest(tc.method, tc.path, nil)
		if tc.auth {
			req.SetBasicAuth("admin", "pw")
		}
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, req)
		if rec.Code != tc.want || rec.Header().Get("Location") != tc.location {
			t.Errorf("%s %s (auth %v): %d %q, want %d %q", tc.method, tc.path, tc.auth, rec.Code, rec.Header().Get("Location"), tc.want, tc.location)
		}
		if tc.want == 200 && tc.method == "GET" && rec.Body.String() != "ui "+tc.path {
			t.Errorf("%s: body %q", tc.path, rec.Body.String())
		}
	}
}

func TestNoUIMeansNoUIRoutes(t *testing.T) {
	p := New(Options{Backends: routes{}})
	for _, path := range []string{"/", "/ui/"} {
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != 404 {
			t.Errorf("GET %s without a UI: %d, want 404", path, rec.Code)
		}
	}
}
