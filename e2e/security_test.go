package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"faasd/config"
	"faasd/internal/testkit"
)

// request sends one /system request with the daemon's credentials and the given headers,
// as a client or a browser would, and returns status and body.
func request(t *testing.T, d *testkit.Daemon, method, url, body string, headers map[string]string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("admin", d.Password())
	for k, v := range headers {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The API password runs code as the default unprivileged user, never as an account the
// caller picks, unless faasd.toml allows that account.
func TestAPIDeploymentsCannotChooseTheirUser(t *testing.T) {
	d := testkit.StartDaemon(t, "", testkit.Options{Auth: true, Gateway: `api_users = ["daemon"]`})
	deploy := func(name, user string) (int, string) {
		dep, _ := json.Marshal(map[string]any{"service": name, "image": "x", "command": []string{testkit.Bin(t) + "/workload"},
			"user": user, "readinessTimeout": "10s"})
		return d.API("POST", "/system/functions", string(dep))
	}
	for _, user := range []string{"root", "nobody", "mail"} {
		code, body := deploy("as-"+user, user)
		if code != 400 || !strings.Contains(body, fmt.Sprintf("user: %q may not be chosen through the API", user)) || !strings.Contains(body, "api_users") {
			t.Errorf("deploy as %s: %d %s, want 400 naming api_users", user, code, body)
		}
		if code, _ := d.API("GET", "/system/function/as-"+user, ""); code != 404 {
			t.Errorf("the refused deployment as %s exists: %d", user, code)
		}
	}
	for user, uid := range map[string]int{"": -1, "daemon": 1} {
		name := "as-" + user + "x"
		if code, body := deploy(name, user); code != 202 {
			t.Fatalf("deploy as %q: %d %s", user, code, body)
		}
		var info testkit.Info
		testkit.WaitFor(t, 20*time.Second, name+" serving", func() bool {
			var err error
			info, err = d.GetInfo(name)
			return err == nil
		})
		if uid == -1 && !config.DefaultUserRange.Contains(uint32(info.UID)) {
			t.Errorf("deployed without a user, runs as uid %d, want an account of its own from %v", info.UID, config.DefaultUserRange)
		}
		if uid != -1 && info.UID != uid {
			t.Errorf("deployed with user %q, runs as uid %d, want %d", user, info.UID, uid)
		}
	}
}

// A deployment cannot take a name by which clients reach the gateway, nor another
// function's; and no host name captures the gateway's own paths.
func TestFunctionHostsCannotTakeTheGateway(t *testing.T) {
	d := testkit.StartDaemon(t, workload("owner", `hosts = ["owned.example"]
env = { VERSION = "file" }`), testkit.Options{Auth: true})
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(d.URL, "http://"))
	deploy := func(name string, hosts ...string) (int, string) {
		dep, _ := json.Marshal(map[string]any{"service": name, "image": "x", "command": []string{testkit.Bin(t) + "/workload"},
			"hosts": hosts, "envVars": map[string]string{"VERSION": "api"}, "readinessTimeout": "10s"})
		return d.API("POST", "/system/functions", string(dep))
	}
	own := []string{"127.0.0.1", "localhost", "LocalHost.", "[::1]", "::1", "127.1", "0x7f000001", "0.0.0.0", "api.localhost"}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() {
				own = append(own, ipn.IP.String())
			}
		}
	}
	for _, h := range own {
		if code, body := deploy("grabber", h); code != 400 || !strings.Contains(body, "reaches the gateway itself") {
			t.Errorf("hosts [%q]: %d %s, want 400", h, code, body)
		}
	}
	if code, body := deploy("grabber", "owned.example"); code != 409 || !strings.Contains(body, "function owner has it") {
		t.Errorf("another function's host: %d %s, want 409", code, body)
	}
	if code, body := deploy("grabber", "grab.example"); code != 202 {
		t.Fatalf("a host of its own: %d %s", code, body)
	}
	// The function has its host at the root, but never the gateway's paths there: the
	// admin's credentials sent to /system by that name reach the gateway, not the function.
	testkit.WaitFor(t, 20*time.Second, "grabber serving its host", func() bool {
		code, body := request(t, d, "GET", d.URL+"/", "", map[string]string{"Host": "grab.example:" + port})
		return code == 200 && strings.Contains(body, `"version":"api"`)
	})
	for _, path := range []string{"/system/functions", "/system/info", "/healthz", "/metrics", "/ui/"} {
		code, body := request(t, d, "GET", d.URL+path, "", map[string]string{"Host": "grab.example:" + port})
		if strings.Contains(body, `"version":"api"`) || strings.Contains(body, "Authorization") {
			t.Errorf("%s by the function's host reached the function: %d %s", path, code, body)
		}
	}
	if _, body := request(t, d, "GET", d.URL+"/system/functions", "", map[string]string{"Host": "grab.example"}); !strings.Contains(body, `"name":"grabber"`) {
		t.Errorf("/system/functions by the function's host: %s", body)
	}

	// The file claims the same host later: the file wins, and says so in the log.
	d.WriteConfig(workload("owner", `hosts = ["owned.example", "grab.example"]
env = { VERSION = "file" }`))
	testkit.WaitFor(t, 20*time.Second, "the file's function to get the host", func() bool {
		_, body := request(t, d, "GET", d.URL+"/", "", map[string]string{"Host": "grab.example"})
		return strings.Contains(body, `"version":"file"`)
	})
	if !strings.Contains(d.Log(), "host name dropped from a deployed function") {
		t.Errorf("no warning about the dropped host:\n%s", d.Log())
	}
	if got := invokeUntilOK(t, d, "GET", "grabber", "", ""); !strings.Contains(got, `"version":"api"`) {
		t.Errorf("the deployed function lost more than its host: %s", got)
	}
}

// What a page of another site can make a browser send with the admin's cached
// credentials is refused; stock clients, which send no browser marks, are not affected.
func TestCrossSiteRequestsCannotDriveTheAPI(t *testing.T) {
	d := testkit.StartDaemon(t, "", testkit.Options{Auth: true})
	origin := d.URL
	deployment := func(name string) string {
		return fmt.Sprintf(`{"service":%q,"image":"x","envProcess":"cat"}`, name)
	}
	for _, tc := range []struct {
		name, method, path, body string
		headers                  map[string]string
		want                     int
	}{
		{"form POST of JSON as text/plain", "POST", "/system/functions", deployment("csrf-text"),
			map[string]string{"Content-Type": "text/plain", "Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}, 415},
		{"text/plain without the browser's marks", "POST", "/system/functions", deployment("csrf-plain"),
			map[string]string{"Content-Type": "text/plain"}, 415},
		{"urlencoded form", "POST", "/system/functions", "service=csrf-form",
			map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415},
		{"JSON from another origin", "POST", "/system/functions", deployment("csrf-origin"),
			map[string]string{"Content-Type": "application/json", "Origin": "http://evil.example", "X-Faasd-Ui": "1"}, 403},
		{"body without a type from a page", "POST", "/system/functions", deployment("csrf-blob"),
			map[string]string{"Origin": origin, "X-Faasd-Ui": "1"}, 415},
		{"cross-site delete", "DELETE", "/system/secrets", `{"name":"x"}`,
			map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}, 403},
		{"same-site read", "GET", "/system/functions", "", map[string]string{"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "no-cors"}, 403},
		{"a same-origin page without the UI's header", "POST", "/system/functions", deployment("csrf-same"),
			map[string]string{"Content-Type": "application/json", "Origin": origin, "Sec-Fetch-Site": "same-origin"}, 403},
		{"the UI", "POST", "/system/functions", deployment("from-ui"),
			map[string]string{"Content-Type": "application/json", "Origin": origin, "Sec-Fetch-Site": "same-origin", "X-Faasd-Ui": "1"}, 202},
		{"a user typing the URL", "GET", "/system/functions", "", map[string]string{"Sec-Fetch-Site": "none", "Sec-Fetch-Mode": "navigate"}, 200},
	} {
		if code, body := request(t, d, tc.method, d.URL+tc.path, tc.body, tc.headers); code != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, code, body, tc.want)
		}
	}
	_, body := d.API("GET", "/system/functions", "")
	if strings.Contains(body, "csrf-") || !strings.Contains(body, `"name":"from-ui"`) {
		t.Errorf("functions after the cross-site attempts: %s", body)
	}
}

// faas-cli and OpenFaaS's Go SDK, replayed request by request as their sources send them
// (Content-Type: application/json with every body; older SDKs send none).
func TestStockClientsStillDriveTheAPI(t *testing.T) {
	d := testkit.StartDaemon(t, "", testkit.Options{Auth: true})
	cli := map[string]string{"Content-Type": "application/json", "User-Agent": "faas-cli/0.18.12"}
	plain := map[string]string{"User-Agent": "faas-cli/0.18.12"}
	sdk := map[string]string{"User-Agent": "Go-http-client/1.1"}
	for _, step := range []struct {
		name, method, path, body string
		headers                  map[string]string
		want                     int
	}{
		{"secret create", "POST", "/system/secrets", `{"name":"cli-secret","namespace":"openfaas-fn","value":"v1"}`, cli, 201},
		{"secret update", "PUT", "/system/secrets", `{"name":"cli-secret","namespace":"openfaas-fn","value":"v2"}`, cli, 200},
		{"secret list", "GET", "/system/secrets?namespace=openfaas-fn", "", plain, 200},
		{"deploy: update first", "PUT", "/system/functions", `{"service":"cli-fn","image":"functions/alpine:latest","namespace":"openfaas-fn","envProcess":"cat","labels":{},"annotations":{}}`, cli, 404},
		{"deploy: then create", "POST", "/system/functions", `{"service":"cli-fn","image":"functions/alpine:latest","namespace":"openfaas-fn","envProcess":"cat","labels":{},"annotations":{}}`, cli, 202},
		{"list", "GET", "/system/functions?namespace=openfaas-fn", "", plain, 200},
		{"describe", "GET", "/system/function/cli-fn?namespace=openfaas-fn&usage=1", "", plain, 200},
		{"scale", "POST", "/system/scale-function/cli-fn", `{"serviceName":"cli-fn","replicas":2,"namespace":"openfaas-fn"}`, cli, 202},
		{"scale by an SDK without a type", "POST", "/system/scale-function/cli-fn", `{"serviceName":"cli-fn","replicas":1}`, sdk, 202},
		{"remove", "DELETE", "/system/functions", `{"functionName":"cli-fn","namespace":"openfaas-fn"}`, cli, 202},
		{"secret remove", "DELETE", "/system/secrets", `{"name":"cli-secret","namespace":"openfaas-fn"}`, cli, 200},
	} {
		if code, body := request(t, d, step.method, d.URL+step.path, step.body, step.headers); code != step.want {
			t.Fatalf("%s: %d %s, want %d", step.name, code, body, step.want)
		}
	}
}

// With admin_listen, functions and the gateway's own routes are on different origins.
func TestAdminListenKeepsFunctionsOffTheUIsOrigin(t *testing.T) {
	d := testkit.StartDaemon(t, "[functions.echo]\nfprocess = \"cat\"\n", testkit.Options{Auth: true, Admin: true})
	if got := invokeUntilOK(t, d, "POST", "echo", "", "hello"); got != "hello" {
		t.Fatalf("echo on the main port: %q", got)
	}
	for _, tc := range []struct {
		url      string
		want     int
		contains string
	}{
		{d.URL + "/healthz", 200, "OK"},
		{d.URL + "/system/functions", 404, ""},
		{d.URL + "/system/info", 404, ""},
		{d.URL + "/ui/", 404, ""},
		{d.URL + "/", 404, ""},
		{d.URL + "/metrics", 404, ""},
		{d.AdminURL + "/system/functions", 200, `"name":"echo"`},
		{d.AdminURL + "/ui/", 200, "<title>faasd</title>"},
		{d.AdminURL + "/metrics", 200, "gateway_function_invocation_total"},
		{d.AdminURL + "/healthz", 200, "OK"},
	} {
		code, body := request(t, d, "GET", tc.url, "", nil)
		if code != tc.want || !strings.Contains(body, tc.contains) {
			t.Errorf("GET %s: %d %.80q, want %d with %q", tc.url, code, body, tc.want, tc.contains)
		}
	}
	// The UI invokes functions from its own port; their answers there are sandboxed.
	resp, err := http.Post(d.AdminURL+"/function/echo", "text/plain", strings.NewReader("from the admin port"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "from the admin port" || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "sandbox") {
		t.Errorf("function on the admin port: %d %q %v", resp.StatusCode, body, resp.Header)
	}
}

// A secret that a function lists cannot be deleted from under it.
func TestSecretInUseCannotBeDeleted(t *testing.T) {
	d := testkit.StartDaemon(t, "", testkit.Options{Auth: true})
	if code, body := d.API("POST", "/system/secrets", `{"name":"db-pass","value":"s3cret"}`); code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	dep := `{"service":"reader","image":"x","envProcess":"cat /var/openfaas/secrets/db-pass","secrets":["db-pass"]}`
	if code, body := d.API("POST", "/system/functions", dep); code != 202 {
		t.Fatalf("deploy: %d %s", code, body)
	}
	invokeUntilOK(t, d, "GET", "reader", "", "")
	if code, body := d.API("DELETE", "/system/secrets", `{"name":"db-pass"}`); code != 409 || !strings.Contains(body, "in use by reader") {
		t.Fatalf("delete of a secret in use: %d %s, want 409 naming reader", code, body)
	}
	// The function's next replica still gets it.
	if code, body := d.API("POST", "/system/scale-function/reader", `{"replicas":2}`); code != 202 {
		t.Fatalf("scale: %d %s", code, body)
	}
	testkit.WaitFor(t, 20*time.Second, "a second replica of reader", func() bool {
		return getStatus(t, d, "reader").AvailableReplicas == 2
	})
	if code, body := d.API("DELETE", "/system/functions", `{"functionName":"reader"}`); code != 202 {
		t.Fatalf("remove: %d %s", code, body)
	}
	if code, body := d.API("DELETE", "/system/secrets", `{"name":"db-pass"}`); code != 200 {
		t.Fatalf("delete once unused: %d %s", code, body)
	}
}

// attackPage is what a page of another site tries against the admin's logged-in browser:
// a JSON body posted as text/plain by fetch and by a form, a body without a type, a CORS
// request with the UI's header (which needs a preflight), and a read of the secrets list.
const attackPage = `<!doctype html><title>attacking</title>
<iframe name="sink"></iframe>
<form id="f" method="POST" enctype="text/plain" target="sink" action="ADMIN/system/functions">
<input name='{"service":"pwned-form-TAG","image":"x","envProcess":"cat","pad":"' value='"}'></form>
<script>
const admin = "ADMIN", tag = "TAG";
const dep = (kind) => JSON.stringify({service: "pwned-" + kind + "-" + tag, image: "x", envProcess: "cat"});
const post = {method: "POST", credentials: "include"};
Promise.allSettled([
  fetch(admin + "/system/functions", {...post, mode: "no-cors", headers: {"Content-Type": "text/plain"}, body: dep("text")}),
  fetch(admin + "/system/functions", {...post, mode: "no-cors", body: new Blob([dep("blob")])}),
  fetch(admin + "/system/functions", {...post, headers: {"Content-Type": "application/json", "X-Faasd-Ui": "1"}, body: dep("cors")}),
  fetch(admin + "/system/secrets", {credentials: "include"}).then((r) => r.text()).then((t) => { window.stolen = t; }),
]).then(() => {
  document.querySelector("iframe").addEventListener("load", () => { document.title = "done"; });
  document.getElementById("f").submit();
});
</script>`

// A real browser, logged in to the UI on the admin port, visits pages of another site
// and of the same site (another port of this host, as a function's page would be): none
// of them can deploy or read anything, while the UI itself works.
func TestPagesOfOtherSitesCannotUseTheAdminsBrowser(t *testing.T) {
	d := testkit.StartDaemon(t, "[functions.echo]\nfprocess = \"cat\"\n", testkit.Options{Auth: true, Admin: true})
	// The login prompt is always answered, as if the admin typed the password again for
	// whichever page asked: the worst case.
	b := testkit.StartBrowser(t, testkit.BrowserOptions{User: "admin", Password: d.Password(), Limit: 2 * time.Minute})

	// The UI works from the admin port, invoking functions there too.
	b.Navigate(d.AdminURL + "/ui/")
	b.WaitFor(20*time.Second, "echo ready", `document.querySelector('tr[data-fn="echo"] .status')?.textContent === "ready"`)
	b.Click(`tr[data-fn="echo"] .fn-name`)
	b.Type("#invoke-body", "from the admin port")
	b.Click("#invoke-submit")
	b.WaitFor(20*time.Second, "the invocation's answer", `document.getElementById("invoke-status").textContent.startsWith("200 ")`)
	if got := b.Text("#invoke-output"); got != "from the admin port" {
		t.Errorf("invoke from the UI: %q", got)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, strings.NewReplacer("ADMIN", d.AdminURL, "TAG", r.URL.Query().Get("tag")).Replace(attackPage))
	})}
	go srv.Serve(ln)
	defer srv.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	for tag, page := range map[string]string{"cross": "http://localhost:" + port, "same": "http://127.0.0.1:" + port} {
		b.Navigate(page + "/?tag=" + tag)
		b.WaitFor(20*time.Second, "the "+tag+"-site page's attempts", `document.title === "done"`)
		var stolen string
		b.Must("read window.stolen", b.Eval(`String(window.stolen)`, &stolen))
		if stolen != "undefined" {
			t.Errorf("the %s-site page read the secrets list: %q", tag, stolen)
		}
	}
	if _, body := d.API("GET", "/system/functions", ""); strings.Contains(body, "pwned") {
		t.Errorf("a page of another site deployed a function: %s", body)
	}
}

// A client that opens connections and never finishes its requests holds each one only
// as long as read_timeout, and only max_conns_per_client of them at once.
func TestHalfOpenClientsAreCutAndCapped(t *testing.T) {
	d := testkit.StartDaemon(t, "", testkit.Options{Auth: true, Gateway: `read_timeout = "1s"
max_conns_per_client = 30`})
	addr := strings.TrimPrefix(d.URL, "http://")
	dial := func() net.Conn {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	heads := []string{
		"GET /healthz HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n",
		"GET /metrics HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n",
		"POST /system/functions HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n",
		"POST /function/nope HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n",
	}
	var conns []net.Conn
	for _, head := range heads {
		conn := dial()
		io.WriteString(conn, head) // and never the body
		conns = append(conns, conn)
	}
	for i, conn := range conns {
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadAll(conn); err != nil {
			t.Errorf("%s: the connection stayed open: %v", strings.Fields(heads[i])[1], err)
		}
	}
	for range 30 {
		dial() // and nothing sent
	}
	conn := dial()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if got, _ := io.ReadAll(conn); !strings.HasPrefix(string(got), "HTTP/1.1 503") {
		t.Errorf("the connection over the cap got %q", got)
	}
	testkit.WaitFor(t, 5*time.Second, "a log line naming the client", func() bool {
		return strings.Contains(d.Log(), "max_conns_per_client=30")
	})
}
