package proxy

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"faasd/api"
	"faasd/catalog"
	"faasd/config"
	"faasd/statedir"
	"faasd/supervisor"
)

// idle is a Control with no replicas: the API tests here are about who may call, not
// about what runs.
type idle struct{}

func (idle) Status(string) (supervisor.Status, bool)               { return supervisor.Status{}, false }
func (idle) Scale(string, int) error                               { return nil }
func (idle) Logs(string) (*supervisor.Logs, bool)                  { return nil, false }
func (idle) RefreshSecret(string) error                            { return nil }
func (noTarget) Apply(map[string]*config.Function)                 {}
func (h hostRoutes) RouteForHost(string) (*supervisor.Route, bool) { return h.route, h.route != nil }
func (h hostRoutes) Route(name string) (*supervisor.Route, bool) {
	return h.route, h.route != nil && name == h.route.Name
}

type noTarget struct{}

// hostRoutes claims every host name for one function.
type hostRoutes struct{ route *supervisor.Route }

func newAPIProxy(t *testing.T, creds *Credentials, backends Backends, separate bool) *Proxy {
	t.Helper()
	cat, err := catalog.Open(statedir.New(t.TempDir()), config.Gateway{UpstreamTimeout: 60e9}, noTarget{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	cat.SetFile("faasd.toml", nil)
	ui := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("the page")) })
	return New(Options{Backends: backends, Catalog: cat, Control: idle{}, Credentials: creds, UI: ui,
		ReadTimeout: 5e9, WriteTimeout: 5e9, MaxBodyBytes: 1 << 20, SeparateAdmin: separate,
		OwnNames: func() config.OwnNames { return config.LocalNames(config.Gateway{Listen: "gw.example:8080"}) }})
}

// serveAsAdmin sends one request with the admin's credentials, as a browser that has them
// cached would, and the given headers.
func serveAsAdmin(p *Proxy, method, url, body string, headers map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, url, strings.NewReader(body))
	if body == "" {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	req.SetBasicAuth("admin", "pw")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, req)
	return rec
}

func TestAPIRefusesWhatAPageOfAnotherSiteCanSend(t *testing.T) {
	creds := &Credentials{User: "admin", Password: "pw"}
	p := newAPIProxy(t, creds, routes{}, false)
	const deployment = `{"service":"fn","image":"x","envProcess":"cat"}`
	for _, tc := range []struct {
		name    string
		method  string
		path    string
		body    string
		headers map[string]string
		want    int
	}{
		// Clients that are not browsers: faas-cli (JSON), old SDKs and the faasd CLI (no
		// type). The cases run in order: deploy, update, scale, remove, deploy again.
		{"faas-cli deploy", "POST", "/system/functions", deployment, map[string]string{"Content-Type": "application/json"}, 202},
		{"json with charset", "PUT", "/system/functions", deployment, map[string]string{"Content-Type": "application/json; charset=utf-8"}, 202},
		{"no content type", "POST", "/system/scale-function/fn", `{"replicas":2}`, nil, 202},
		{"faas-cli remove", "DELETE", "/system/functions", `{"functionName":"fn"}`, map[string]string{"Content-Type": "application/json"}, 202},
		{"list", "GET", "/system/functions", "", nil, 200},

		// What a form or a simple fetch of another site sends.
		{"text/plain body", "POST", "/system/functions", deployment, map[string]string{"Content-Type": "text/plain"}, 415},
		{"form body", "POST", "/system/functions", "service=x", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415},
		{"multipart body", "POST", "/system/secrets", "--b--", map[string]string{"Content-Type": "multipart/form-data; boundary=b"}, 415},
		{"bad media type", "POST", "/system/functions", deployment, map[string]string{"Content-Type": "application/json;;"}, 415},
		{"foreign origin", "POST", "/system/functions", deployment, map[string]string{"Content-Type": "application/json", "Origin": "http://evil.example", api.UIHeader: "1"}, 403},
		{"null origin", "POST", "/system/functions", deployment, map[string]string{"Content-Type": "application/json", "Origin": "null", api.UIHeader: "1"}, 403},
		{"another port", "POST", "/system/functions", deployment, map[string]string{"Content-Type": "application/json", "Origin": "http://gw.example:9999", api.UIHeader: "1"}, 403},
		{"cross-site", "GET", "/system/functions", "", map[string]string{"Sec-Fetch-Site": "cross-site", api.UIHeader: "1"}, 403},
		{"same-site", "GET", "/system/functions", "", map[string]string{"Sec-Fetch-Site": "same-site", api.UIHeader: "1"}, 403},
		{"blob body from a page", "POST", "/system/functions", deployment, map[string]string{"Origin": "http://gw.example:8080", api.UIHeader: "1"}, 415},
		{"same origin without the UI header", "POST", "/system/functions", deployment, map[string]string{"Content-Type": "application/json", "Origin": "http://gw.example:8080"}, 403},
		{"page's GET without the UI header", "GET", "/system/functions", "", map[string]string{"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors"}, 403},
		{"cross-site navigation", "GET", "/system/functions", "", map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}, 403},

		// The UI itself, and a user who types an API URL into the address bar.
		{"the UI deploys", "POST", "/system/functions", deployment, map[string]string{"Content-Type": "application/json", "Origin": "http://gw.example:8080", "Sec-Fetch-Site": "same-origin", api.UIHeader: "1"}, 202},
		{"the UI lists", "GET", "/system/functions", "", map[string]string{"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors", api.UIHeader: "1"}, 200},
		{"behind a TLS proxy", "GET", "/system/functions", "", map[string]string{"Origin": "https://gw.example:8080", api.UIHeader: "1"}, 200},
		{"typed by the user", "GET", "/system/functions", "", map[string]string{"Sec-Fetch-Site": "none", "Sec-Fetch-Mode": "navigate"}, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := serveAsAdmin(p, tc.method, "http://gw.example:8080"+tc.path, tc.body, tc.headers)
			if rec.Code != tc.want {
				t.Errorf("%d %s, want %d", rec.Code, strings.TrimSpace(rec.Body.String()), tc.want)
			}
			if rec.Code == 403 && rec.Header().Get("WWW-Authenticate") != "" {
				t.Error("a refused browser request was asked for credentials")
			}
		})
	}
}

// No preflight is ever granted, so a page of another origin cannot send the UI's header.
func TestAPIGrantsNoPreflight(t *testing.T) {
	p := newAPIProxy(t, &Credentials{User: "admin", Password: "pw"}, routes{}, false)
	req := httptest.NewRequest("OPTIONS", "/system/functions", nil)
	req.Header.Set("Origin", "http://evil.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", api.UIHeader)
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, req)
	if rec.Code < 400 || rec.Header().Get("Access-Control-Allow-Origin") != "" || rec.Header().Get("Access-Control-Allow-Headers") != "" {
		t.Errorf("preflight answered %d %v", rec.Code, rec.Header())
	}
}

func TestUIPageLoadsOnlyFromItsOwnSiteOrANavigation(t *testing.T) {
	p := newAPIProxy(t, &Credentials{User: "admin", Password: "pw"}, routes{}, false)
	for _, tc := range []struct {
		name    string
		headers map[string]string
		want    int
	}{
		{"no browser marks", nil, 200},
		{"typed", map[string]string{"Sec-Fetch-Site": "none", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}, 200},
		{"a link from another site", map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}, 200},
		{"the page's script", map[string]string{"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "script"}, 200},
		{"framed by another site", map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "iframe"}, 403},
		{"fetched by another site", map[string]string{"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "empty"}, 403},
		{"foreign origin", map[string]string{"Origin": "http://evil.example"}, 403},
	} {
		if rec := serveAsAdmin(p, "GET", "http://gw.example:8080/ui/", "", tc.headers); rec.Code != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, rec.Code, tc.want)
		}
	}
}

// Without credentials, a page renamed to this machine's address by its own DNS would be
// same-origin; it is refused because it does not use one of the gateway's names.
func TestWithoutAuthBrowsersMustUseTheGatewaysNames(t *testing.T) {
	p := newAPIProxy(t, nil, routes{}, false)
	for host, want := range map[string]int{
		"gw.example:8080": 200, "localhost:8080": 200, "127.0.0.1:8080": 200, "[::1]:8080": 200, "192.0.2.7:8080": 200,
		"rebound.evil.example:8080": 403,
	} {
		req := httptest.NewRequest("GET", "http://"+host+"/system/functions", nil)
		req.Header.Set("Origin", "http://"+host)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		req.Header.Set(api.UIHeader, "1")
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("Host %s: %d %s, want %d", host, rec.Code, rec.Body, want)
		}
	}
	// Clients that are not browsers are not affected.
	req := httptest.NewRequest("GET", "http://rebound.evil.example:8080/system/functions", nil)
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Errorf("curl by another name: %d", rec.Code)
	}
}

// A function's host names never capture the gateway's own paths, nor requests that name
// the gateway by the address they came in on.
func TestHostRoutingNeverCapturesTheGateway(t *testing.T) {
	fn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("function saw " + r.URL.Path))
	}))
	defer fn.Close()
	rt := supervisor.NewStaticRoute(spec("fn"), strings.TrimPrefix(fn.URL, "http://"))
	p := newAPIProxy(t, &Credentials{User: "admin", Password: "pw"}, hostRoutes{rt}, false)
	srv := httptest.NewServer(p)
	defer srv.Close()
	for _, tc := range []struct {
		path, host, want string
	}{
		{"/system/functions", "fn.example", "[]"},
		{"/system/info", "fn.example", "faasd-process"},
		{"//system/functions", "fn.example", "404 page not found"},
		{"/x/../system/functions", "fn.example", "404 page not found"},
		{"/%73ystem/functions", "fn.example", "[]"},
		{"/healthz", "fn.example", "OK"},
		{"/metrics", "fn.example", ""},
		{"/ui/", "fn.example", "the page"},
		{"/anything", "fn.example", "function saw /anything"},
		{"/", "fn.example", "function saw /"},
		{"/system-status", "fn.example", "function saw /system-status"},
		{"/anything", strings.TrimPrefix(srv.URL, "http://"), "404 page not found"},
		{"/function/fn/x", "127.0.0.1", "function saw /x"},
	} {
		req, _ := http.NewRequest("GET", srv.URL+tc.path, nil)
		req.Host = tc.host
		req.SetBasicAuth("admin", "pw")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), tc.want) || (tc.want == "" && resp.StatusCode != 200) {
			t.Errorf("GET %s (Host %s): %d %q, want %q", tc.path, tc.host, resp.StatusCode, body, tc.want)
		}
	}
}

// With SeparateAdmin, the admin port serves the API, the UI and the metrics, and the
// main port functions and /healthz only.
func TestAdminPortServesTheGatewayAndTheMainPortFunctions(t *testing.T) {
	fn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<script>fetch('/system/functions')</script>"))
	}))
	defer fn.Close()
	p := newAPIProxy(t, &Credentials{User: "admin", Password: "pw"}, routes{"fn": supervisor.NewStaticRoute(spec("fn"), strings.TrimPrefix(fn.URL, "http://"))}, true)
	srv := &http.Server{Handler: p, ConnContext: ConnContext}
	mainLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adminLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(mainLn)
	go srv.Serve(AdminListener(adminLn))
	defer srv.Shutdown(context.Background())
	main, admin := "http://"+mainLn.Addr().String(), "http://"+adminLn.Addr().String()
	for _, tc := range []struct {
		url  string
		want int
	}{
		{main + "/function/fn", 200}, {main + "/healthz", 200},
		{main + "/system/functions", 404}, {main + "/system/info", 404}, {main + "/ui/", 404}, {main + "/metrics", 404}, {main + "/", 404},
		{admin + "/system/functions", 200}, {admin + "/ui/", 200}, {admin + "/metrics", 200}, {admin + "/healthz", 200},
		{admin + "/function/fn", 200},
	} {
		req, _ := http.NewRequest("GET", tc.url, nil)
		req.SetBasicAuth("admin", "pw")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("GET %s: %d, want %d", tc.url, resp.StatusCode, tc.want)
		}
		// A function's page shown from the admin port runs in an origin of its own.
		sandboxed := strings.Contains(resp.Header.Get("Content-Security-Policy"), "sandbox")
		if strings.HasPrefix(tc.url, admin+"/function/") != sandboxed {
			t.Errorf("GET %s: Content-Security-Policy %q", tc.url, resp.Header.Get("Content-Security-Policy"))
		}
	}
}
