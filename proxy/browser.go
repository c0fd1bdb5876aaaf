package proxy

import (
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"faasd/api"
)

// A browser keeps the basic-auth credentials of /ui and /system and sends them with any
// request to that origin, whichever page asked for it. A page of another site can make a
// browser send "simple" requests without asking the server first: GET, HEAD and POST with
// a form, multipart or text/plain body (or none) and no header of its own. So /system
// refuses a Content-Type other than application/json; an Origin or Sec-Fetch-Site that
// says another origin sent the request; and any request that carries a browser's marks
// (Origin, Sec-Fetch-*) without api.UIHeader, which a page of another origin cannot send
// without a CORS preflight, and the gateway grants none. Clients that are not browsers
// (faas-cli, the faasd CLI, curl) carry no such marks and are not affected.

// apiGuard applies those rules to a /system route, before authentication: a refused
// request never gets the 401 that would make a browser prompt for the password.
func (p *Proxy) apiGuard(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ct := r.Header.Get("Content-Type"); ct != "" {
			if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
				http.Error(w, "Content-Type must be application/json, not "+ct, http.StatusUnsupportedMediaType)
				return
			}
		}
		if browserMarked(r) {
			if msg := p.foreignSite(r); msg != "" {
				http.Error(w, msg, http.StatusForbidden)
				return
			}
			if r.ContentLength != 0 && r.Header.Get("Content-Type") == "" {
				http.Error(w, "Content-Type must be application/json", http.StatusUnsupportedMediaType)
				return
			}
			if r.Header.Get(api.UIHeader) == "" && !typedByUser(r) {
				http.Error(w, "a browser may call /system only from the faasd web UI (the request lacks "+api.UIHeader+")", http.StatusForbidden)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// pageGuard applies them to the UI's files, which the browser loads by navigating (which
// cannot carry a header) and as the page's own subresources. A link from another site to
// the UI is harmless, as the page then talks only to its own origin; anything else from
// another site (a frame, a script, a fetch) is refused.
func (p *Proxy) pageGuard(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if browserMarked(r) && !topLevelNavigation(r) {
			if msg := p.foreignSite(r); msg != "" {
				http.Error(w, msg, http.StatusForbidden)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// foreignSite says why a browser's request came from a page that is not the gateway's
// own, or "" when it did not.
func (p *Proxy) foreignSite(r *http.Request) string {
	if o := r.Header.Get("Origin"); o != "" && !sameOrigin(o, r.Host) {
		return "refused: a request from a page of another origin (" + o + ")"
	}
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "cross-site", "same-site":
		return "refused: a request from a page of another origin (Sec-Fetch-Site: " + site + ")"
	}
	// Without credentials, a page of any site could rename itself to this machine's
	// address through its own DNS (DNS rebinding) and be same-origin: such a page reaches
	// the gateway by the attacker's name, never by one of the gateway's own.
	if p.creds == nil {
		host := hostOnly(r.Host)
		if _, err := netip.ParseAddr(strings.Trim(host, "[]")); err != nil && p.ownNames().Check(host) == nil {
			return "refused: with auth = false, a browser must reach /system by an address or name of this machine, not " + host
		}
	}
	return ""
}

// browserMarked reports whether a request carries what only browsers send.
func browserMarked(r *http.Request) bool {
	if r.Header.Get("Origin") != "" {
		return true
	}
	for k := range r.Header {
		if strings.HasPrefix(k, "Sec-Fetch-") {
			return true
		}
	}
	return false
}

// typedByUser reports a navigation that the user started (address bar, bookmark): no
// page can make one, so a user may look at the API's JSON in the browser.
func typedByUser(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) &&
		r.Header.Get("Sec-Fetch-Site") == "none" && r.Header.Get("Origin") == ""
}

func topLevelNavigation(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) &&
		r.Header.Get("Sec-Fetch-Mode") == "navigate" && r.Header.Get("Sec-Fetch-Dest") == "document"
}

// sameOrigin compares an Origin header with the host the request was sent to. The scheme
// is not compared: behind a TLS proxy the page is https while the gateway speaks http.
func sameOrigin(origin, host string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return false // "null" (sandboxed frames, data: pages) and the like
	}
	return hostPort(u.Host, u.Scheme) == hostPort(host, u.Scheme)
}

func hostPort(hp, scheme string) string {
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		host, port = strings.Trim(hp, "[]"), ""
	}
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[scheme]
	}
	return net.JoinHostPort(strings.ToLower(host), port)
}
