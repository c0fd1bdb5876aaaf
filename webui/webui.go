// Package webui owns the browser UI: static files embedded in the binary and served under
// /ui/. The page is a client of the same /system API as faas-cli and the faasd CLI, with
// the browser's basic-auth credentials; it must not grow a private API of its own.
package webui

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// Prefix is where the UI lives; the handler expects full request paths under it.
const Prefix = "/ui/"

// contentTypes lists every file that is served, with its type fixed here rather than
// guessed from the host's mime tables, which differ between distributions.
var contentTypes = map[string]string{
	"index.html": "text/html; charset=utf-8",
	"app.js":     "text/javascript; charset=utf-8",
	"chart.js":   "text/javascript; charset=utf-8",
	"style.css":  "text/css; charset=utf-8",
}

// csp allows the page its own scripts, styles and same-origin fetches, and nothing else:
// no inline code, no other origin, no framing. Data the page shows can then never run as
// code even if an escaping mistake slipped in.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

type file struct {
	body        []byte
	contentType string
	etag        string
}

// Handler serves the UI's files under /ui/ (index.html at /ui/ itself). It answers GET and
// HEAD; authentication is the caller's business, as for the API the page talks to.
func Handler() http.Handler {
	files := make(map[string]file, len(contentTypes))
	for name, ct := range contentTypes {
		b, err := static.ReadFile("static/" + name)
		if err != nil {
			panic("webui: embedded file missing: " + name) // a build mistake, caught by the tests
		}
		sum := sha256.Sum256(b)
		files[name] = file{body: b, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		name, ok := strings.CutPrefix(r.URL.Path, Prefix)
		f, found := files[cmp.Or(name, "index.html")]
		if !ok || !found {
			http.NotFound(w, r)
			return
		}
		h.Set("Content-Type", f.contentType)
		h.Set("Content-Security-Policy", csp)
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		// no-cache, not no-store: the browser revalidates with the ETag on every load, so
		// a new daemon's files are picked up at once and an unchanged file costs a 304.
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", f.etag)
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(f.body))
	})
}
