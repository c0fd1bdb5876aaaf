// Package proxy owns the one HTTP server of the daemon: routing, invocation proxying,
// holding requests while a function wakes, load balancing, per-function counters and
// metrics. It never starts a process itself: it reads the supervisor's routing table and
// asks it to wake a function.
package proxy

import (
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/julienschmidt/httprouter"

	"faasd/api"
	"faasd/config"
	"faasd/internal/latency"
	"faasd/supervisor"
)

// Backends is what the proxy needs of the supervisor.
type Backends interface {
	Route(name string) (*supervisor.Route, bool)
	RouteForHost(host string) (*supervisor.Route, bool)
}

// Options configure a Proxy.
type Options struct {
	Backends     Backends
	Logger       *slog.Logger
	MaxBodyBytes int64         // larger request bodies get 413
	HoldTimeout  time.Duration // how long a request waits for a ready replica
	MaxHeld      int           // requests per function that may wait at once; 0 = no cap
	Version      string
	Commit       string

	// The OpenFaaS API under /system, when Catalog is set.
	Catalog     Catalog
	Control     Control
	History     History      // GET /system/history; nil: no such route
	Credentials *Credentials // basic auth on /system (and /ui); nil: open

	// ReadTimeout and WriteTimeout bound every request but function calls (which
	// their function's timeout bounds) and log follows; ReadHeaderTimeout bounds
	// every request's head. See Server.
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	ReadHeaderTimeout time.Duration
	// MaxConnsPerClient caps the connections one client address holds open at once
	// (see Listener); 0: no cap.
	MaxConnsPerClient int
	// TrustedProxies are the addresses whose X-Forwarded-* fields are believed, and
	// whose connections are not capped.
	TrustedProxies []netip.Prefix
	// Containment is what /system/info says of the replicas' cgroups; nil: nothing.
	Containment *api.Containment

	// UI serves the web UI under /ui/, behind the same basic auth as /system; nil: no UI.
	UI http.Handler

	// SeparateAdmin serves /system, /ui and /metrics only on connections of an
	// AdminListener, and functions and /healthz on the others (see admin.go).
	SeparateAdmin bool
	// OwnNames are the gateway's own names, by which a browser must reach /system when
	// there are no credentials; nil: config.LocalNames of an empty [gateway].
	OwnNames func() config.OwnNames
}

// Proxy is the gateway's HTTP handler.
type Proxy struct {
	backends    Backends
	log         *slog.Logger
	maxBody     int64
	holdTimeout time.Duration
	maxHeld     int
	version     string
	commit      string

	catalog  Catalog
	control  Control
	history  History
	creds    *Credentials
	apiRead  time.Duration
	apiWrite time.Duration

	headerTimeout time.Duration
	trusted       trustedProxies
	clients       clientLimits
	ui            http.Handler
	contain       *api.Containment
	queue         Queue // asynchronous calls, once ServeAsync ran
	ownNames      func() config.OwnNames
	closing       chan struct{}
	close         sync.Once

	balancer  balancer
	stats     statsTable
	metrics   *metrics.Set
	transport transport
	router    *httprouter.Router
	admin     *httprouter.Router // the admin port's routes; nil without SeparateAdmin

	// The connections served without net/http's server (conn.go).
	callFn       func(http.ResponseWriter, *http.Request)
	fastServer   atomic.Pointer[http.Server]
	fastConns    sync.Map // *fastConn → struct{}
	handedBack   sync.Map // remote address → struct{}, of connections given back to net/http
	handbackOnce sync.Once
	handbacks    *chanListener
}

// New builds the proxy and its routes.
func New(opts Options) *Proxy {
	p := &Proxy{
		backends:    opts.Backends,
		log:         opts.Logger,
		maxBody:     opts.MaxBodyBytes,
		holdTimeout: opts.HoldTimeout,
		maxHeld:     opts.MaxHeld,
		version:     opts.Version,
		commit:      opts.Commit,
		catalog:     opts.Catalog,
		control:     opts.Control,
		history:     opts.History,
		creds:       opts.Credentials,
		apiRead:     opts.ReadTimeout,
		apiWrite:    opts.WriteTimeout,

		headerTimeout: opts.ReadHeaderTimeout,
		trusted:       opts.TrustedProxies,
		ui:            opts.UI,
		contain:       opts.Containment,
		ownNames:      opts.OwnNames,
		closing:       make(chan struct{}),
		metrics:       metrics.NewSet(),
	}
	if p.commit == "" {
		p.commit = "unknown"
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	if p.version == "" {
		p.version = "dev"
	}
	p.clients = clientLimits{max: opts.MaxConnsPerClient, trusted: p.trusted, log: p.log, now: time.Now, open: map[netip.Addr]*clientConns{}}
	if p.ownNames == nil {
		p.ownNames = func() config.OwnNames { return config.LocalNames(config.Gateway{}) }
	}
	p.stats.set = p.metrics
	p.router = newRouter()
	p.functionRoutes(p.router)
	if opts.SeparateAdmin {
		p.admin = p.adminRouter()
		p.router.GET("/healthz", healthz)
	} else {
		p.gatewayRoutes(p.router)
	}
	p.callFn = p.call
	return p
}

// Close ends the streams that would otherwise run until their clients leave (log
// follows), so that a graceful shutdown does not wait for them.
func (p *Proxy) Close() {
	p.close.Do(func() { close(p.closing) })
	p.closeFast()
}

// Router exposes the route table so that the API can add its routes beside ours.
func (p *Proxy) Router() *httprouter.Router { return p.router }

// Stats returns the counters of a function.
func (p *Proxy) Stats(name string) Stats { return p.stats.get(name).snapshot() }

// Latency returns the cumulative histogram of a function's request durations.
func (p *Proxy) Latency(name string) latency.Snapshot { return p.stats.get(name).latency.Snapshot() }

// Metrics is the registry behind /metrics, for other packages to add theirs.
func (p *Proxy) Metrics() *metrics.Set { return p.metrics }

// ServeHTTP routes requests for a function's own host names before anything else, so
// that such a host reaches the function at the root path; the gateway's own paths and
// the admin port are never a function's. Function calls skip the router, which allocates
// their parameters (it keeps their routes, for its 405 answers), and the first on a
// connection takes the connection off net/http's server (see conn.go).
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p.admin != nil && onAdminPort(r) {
		p.admin.ServeHTTP(w, r)
		return
	}
	if !p.isCall(r) {
		p.router.ServeHTTP(w, r)
		return
	}
	if !p.takeOver(w, r, p.callFn) {
		p.call(w, r)
	}
}

// hostRoute returns the function that r reaches by its host name.
func (p *Proxy) hostRoute(r *http.Request) (*supervisor.Route, bool) {
	route, ok := p.backends.RouteForHost(hostOnly(r.Host))
	if !ok || gatewayPath(r.URL.Path) || addressedToGateway(r) {
		return nil, false
	}
	return route, true
}

// isCall reports whether r calls a function, on the main port.
func (p *Proxy) isCall(r *http.Request) bool {
	if _, ok := p.hostRoute(r); ok {
		return true
	}
	return strings.HasPrefix(r.URL.Path, "/function/") && isInvocationMethod(r.Method)
}

// call serves a request for which isCall holds.
func (p *Proxy) call(w http.ResponseWriter, r *http.Request) {
	if route, ok := p.hostRoute(r); ok {
		p.invoke(w, r, route, "", r.URL.EscapedPath())
		return
	}
	p.callFunction(w, r)
}

func isInvocationMethod(m string) bool {
	for _, im := range invocationMethods {
		if m == im {
			return true
		}
	}
	return false
}

// invocationMethods are the methods a function may be called with, as upstream allows.
var invocationMethods = []string{
	http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodOptions, http.MethodHead,
}

func newRouter() *httprouter.Router {
	r := httprouter.New()
	// Paths are the function's business: no redirects to cleaned paths, and OPTIONS
	// (CORS preflights) reach the function. The gateway's own routes answer no
	// preflight, so no page of another origin may send them what a preflight guards.
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.HandleOPTIONS = false
	r.NotFound = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "404 page not found: "+r.URL.Path, http.StatusNotFound)
	})
	return r
}

func (p *Proxy) functionRoutes(r *httprouter.Router) {
	for _, m := range invocationMethods {
		r.Handle(m, "/function/:name", p.handleFunction)
		r.Handle(m, "/function/:name/*path", p.handleFunction)
	}
}

// gatewayRoutes are the gateway's own: health, metrics, the API and the UI.
func (p *Proxy) gatewayRoutes(r *httprouter.Router) {
	r.GET("/healthz", healthz)
	r.GET("/metrics", func(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		p.metrics.WritePrometheus(w)
	})
	if p.catalog != nil {
		p.apiRoutes(r)
	}
	if p.ui != nil {
		p.uiRoutes(r)
	}
}

func healthz(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("OK\n"))
}

// uiRoutes serves the web UI behind the API's basic auth: the browser's login prompt comes
// from the 401 of the page itself, and the page's API calls reuse what the user typed.
// The root redirects to it, as the OpenFaaS gateway's does.
func (p *Proxy) uiRoutes(r *httprouter.Router) {
	ui := p.pageGuard(p.requireAuth(p.ui))
	r.Handler(http.MethodGet, "/ui/*filepath", ui)
	r.Handler(http.MethodHead, "/ui/*filepath", ui)
	toUI := func(w http.ResponseWriter, req *http.Request, _ httprouter.Params) {
		http.Redirect(w, req, "/ui/", http.StatusTemporaryRedirect)
	}
	r.GET("/", toUI)
	r.GET("/ui", toUI)
}

func (p *Proxy) handleFunction(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	p.callFunction(w, r)
}

// callFunction serves /function/NAME[/PATH].
func (p *Proxy) callFunction(w http.ResponseWriter, r *http.Request) {
	raw, prefix, path, ok := callPath(r.URL.EscapedPath(), "function")
	if !ok {
		answerNow(w)
		http.Error(w, "404 page not found: "+r.URL.Path, http.StatusNotFound)
		return
	}
	route, found := p.backends.Route(functionName(raw))
	if !found {
		p.notFound(w, r, raw)
		return
	}
	p.invoke(w, r, route, prefix, path)
}

// callPath splits the escaped path of a call, /ROOT/NAME[/PATH], at its slashes as the
// client wrote them: name is the second segment, unescaped, and path what follows it,
// as escaped, the upstream path. An encoded slash never splits a segment, so a call
// routes by the same path it forwards: /function/a%2Fb names the function "a/b", which
// cannot exist (404), rather than reaching "a" with the path "/". The router (and
// isCall) match the unescaped path, where it would have split.
func callPath(escaped, root string) (name, prefix, path string, ok bool) {
	first, rest, _ := strings.Cut(strings.TrimPrefix(escaped, "/"), "/")
	if r, err := url.PathUnescape(first); err != nil || r != root {
		return "", "", "", false
	}
	seg, _, _ := strings.Cut(rest, "/")
	end := len(escaped) - len(rest) + len(seg)
	name, err := url.PathUnescape(seg)
	if err != nil {
		return "", "", "", false
	}
	return name, escaped[:end], escaped[end:], true
}

// functionName is the function a call's NAME segment names: NAME, or NAME.openfaas-fn,
// OpenFaaS's namespace; another namespace names none ("").
func functionName(raw string) string {
	name, ok := strings.CutSuffix(raw, "."+api.Namespace)
	if !ok && strings.Contains(raw, ".") {
		return ""
	}
	return name
}

// hostOnly is the host of a Host field, lower case, without port or IPv6 brackets.
func hostOnly(hostport string) string {
	host := hostport
	if i := strings.LastIndexByte(host, ':'); i >= 0 && strings.IndexByte(host[i:], ']') < 0 {
		host = host[:i]
	}
	if len(host) > 1 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	return strings.ToLower(host)
}
