package watchdog

import (
	"bufio"
	"net/http"
	"strings"
	"testing"
)

// FuzzHeaderEnv feeds request headers, as a client sends them on the wire, to the
// mapping into a child's environment: every variable is one exec accepts, a client adds
// only Http_* variables (never PATH, LD_PRELOAD or the watchdog's own), and none shadows
// the request's method or path.
func FuzzHeaderEnv(f *testing.F) {
	f.Add("X-Custom", "value", "/path?q=1")
	f.Add("Method", "DELETE", "/")
	f.Add("content-length", "0", "/a%2Fb")
	f.Add("X_Under_Score", "a=b=c", "/?Http_Method=x")
	f.Add("Path", "/etc/passwd", "//x")
	base := []string{"PATH=/usr/bin:/bin", "fprocess=cat", "HOME=/tmp"}
	f.Fuzz(func(t *testing.T, name, value, target string) {
		raw := "POST " + target + " HTTP/1.1\r\nHost: fn.example\r\n" + name + ": " + value + "\r\nContent-Length: 0\r\n\r\n"
		r, err := readRequest(raw)
		if err != nil {
			return // the server would have answered 400
		}
		s := &server{cfg: Config{CGIHeaders: true}, env: base}
		env := s.childEnv(r)
		last := map[string]string{}
		for i, kv := range env {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" || strings.ContainsRune(kv, 0) {
				t.Fatalf("variable %q is not one exec accepts", kv)
			}
			if i >= len(base) && !strings.HasPrefix(k, "Http_") {
				t.Fatalf("a client set %q", kv)
			}
			last[k] = v // exec.Cmd keeps the last of duplicate keys
		}
		for i, kv := range base {
			if env[i] != kv {
				t.Fatalf("inherited %q became %q", kv, env[i])
			}
		}
		// A NUL, which %00 decodes to, stays encoded: no variable can hold one.
		path := strings.ReplaceAll(r.URL.Path, "\x00", "%00")
		if last["Http_Method"] != r.Method || last["Http_Path"] != path || last["PATH"] != "/usr/bin:/bin" || last["fprocess"] != "cat" {
			t.Fatalf("shadowed: %v for %s %s", last, r.Method, r.URL.Path)
		}
	})
}

func readRequest(raw string) (*http.Request, error) {
	return http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
}
