package proxy

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"path"
	"strings"

	"github.com/julienschmidt/httprouter"
)

// With [gateway] admin_listen, /system, /ui and /metrics have a listener of their own and
// the main port serves functions and /healthz only. A page that a function serves is then
// never of the UI's origin, where its scripts could call /system with the admin's
// credentials as if they were the UI's own.

type adminConnKey struct{}

// AdminListener marks the connections of ln as the admin port's. The daemon serves both
// ports with one http.Server (one set of timeouts, one graceful shutdown) and ConnContext.
func AdminListener(ln net.Listener) net.Listener { return adminListener{ln} }

// ConnContext is the http.Server's ConnContext: it tells the handler which port a
// connection came in on.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if _, ok := c.(adminConn); ok {
		return context.WithValue(ctx, adminConnKey{}, true)
	}
	return ctx
}

type adminListener struct{ net.Listener }

func (l adminListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return adminConn{c}, nil
}

type adminConn struct{ net.Conn }

func onAdminPort(r *http.Request) bool {
	v, _ := r.Context().Value(adminConnKey{}).(bool)
	return v
}

// adminRouter serves the admin port: the API, the UI, /metrics and /healthz. It also
// answers /function/* so that the UI can invoke functions from its own origin, but marks
// every such answer `Content-Security-Policy: sandbox`: a function's page shown from the
// admin port gets an opaque origin of its own and runs no script.
func (p *Proxy) adminRouter() *httprouter.Router {
	r := newRouter()
	p.gatewayRoutes(r)
	sandboxed := func(w http.ResponseWriter, req *http.Request, ps httprouter.Params) {
		w.Header().Add("Content-Security-Policy", "sandbox")
		p.handleFunction(w, req, ps)
	}
	for _, m := range invocationMethods {
		r.Handle(m, "/function/:name", sandboxed)
		r.Handle(m, "/function/:name/*path", sandboxed)
	}
	return r
}

// gatewayPath reports the paths that are the gateway's own on any host: a function's host
// name never captures them, so that /system (and the credentials sent with it) always
// reaches the gateway.
func gatewayPath(p string) bool {
	p = path.Clean("/" + p)
	for _, root := range []string{"/system", "/ui", "/healthz", "/metrics"} {
		if p == root || strings.HasPrefix(p, root+"/") {
			return true
		}
	}
	return false
}

// addressedToGateway reports a request whose Host is the very address it came in on: a
// client that names the gateway by its address means the gateway, whatever function a
// host name list says.
func addressedToGateway(r *http.Request) bool {
	local, ok := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr)
	if !ok {
		return false
	}
	host, err := netip.ParseAddr(strings.Trim(hostOnly(r.Host), "[]"))
	if err != nil {
		return false
	}
	addr, ok := netip.AddrFromSlice(local.IP)
	return ok && addr.Unmap() == host.Unmap()
}
