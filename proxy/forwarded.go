package proxy

import (
	"bufio"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// The forwarding fields tell a function who called it, by which name and scheme, and
// under which path prefix. A client can write them too, so they are believed only from
// the proxies the operator names ([gateway] trusted_proxies); from anyone else they are
// replaced by what the gateway sees itself.

// trustedProxies are the addresses whose forwarding fields are believed.
type trustedProxies []netip.Prefix

// has reports whether the address of a request's RemoteAddr is a trusted proxy's.
func (t trustedProxies) has(remoteAddr string) bool {
	if len(t) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return false
	}
	return t.contains(ap.Addr())
}

func (t trustedProxies) contains(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// forwardingField reports the fields that say where a request came from: written by the
// gateway, never copied from the client as they are.
func forwardingField(k string) bool {
	switch k {
	case "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
		"X-Forwarded-Prefix", "X-Real-Ip":
		return true
	}
	return false
}

// writeForwarding writes the forwarding fields of a call's request. From a trusted
// proxy, the client's address is appended to its X-Forwarded-For and its host, scheme,
// prefix (with the gateway's after it) and X-Real-Ip are kept; from anyone else, the
// fields say what the gateway saw: the peer's address, the Host, http or https, the
// gateway's prefix. Forwarded, which the gateway does not speak, is never passed on.
func (cl *call) writeForwarding(bw *bufio.Writer) {
	r := cl.r
	trusted := cl.p.trusted.has(r.RemoteAddr)
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		bw.WriteString("X-Forwarded-For: ")
		if trusted {
			for _, prior := range r.Header["X-Forwarded-For"] {
				bw.WriteString(prior)
				bw.WriteString(", ")
			}
		}
		bw.WriteString(ip)
		bw.WriteString("\r\n")
	}
	host, proto, prefix := r.Host, "http", ""
	if r.TLS != nil {
		proto = "https"
	}
	if trusted {
		host = firstOr(r.Header["X-Forwarded-Host"], host)
		proto = firstOr(r.Header["X-Forwarded-Proto"], proto)
		prefix = strings.TrimSuffix(firstOr(r.Header["X-Forwarded-Prefix"], ""), "/")
		if v := r.Header["X-Real-Ip"]; len(v) > 0 {
			writeField(bw, "X-Real-Ip", v[0])
		}
	}
	writeField(bw, "X-Forwarded-Host", host)
	writeField(bw, "X-Forwarded-Proto", proto)
	// Lets an application build links that work behind /function/NAME (and behind the
	// trusted proxy's own prefix).
	if prefix+cl.prefix != "" {
		writeField(bw, "X-Forwarded-Prefix", prefix+cl.prefix)
	}
}

// firstOr is the first of a field's values, or def when it has none or an empty one.
func firstOr(vs []string, def string) string {
	if len(vs) > 0 && vs[0] != "" {
		return vs[0]
	}
	return def
}

// underscoreSpelling reports whether k, read as servers that take '_' for '-' read it
// (Rack and CGI, through their HTTP_* variables), is a field drop reports: a client's
// X_Forwarded_For must not pass for the gateway's X-Forwarded-For there.
func underscoreSpelling(k string, drop func(string) bool) bool {
	if strings.IndexByte(k, '_') < 0 {
		return false
	}
	return drop(http.CanonicalHeaderKey(strings.ReplaceAll(k, "_", "-")))
}
