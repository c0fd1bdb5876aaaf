package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"faasd/api"
	"faasd/catalog"
	"faasd/config"
	"faasd/proxy"
	"faasd/statedir"
	"faasd/supervisor"
)

// The CLI's commands run in-process against a gateway made of the daemon's own proxy and
// catalog over a real socket; only the supervisor is replaced, by replicas that are always
// ready, and invocations reach a plain HTTP server standing in for a replica.

// replicas is what the proxy and the catalog need of the supervisor.
type replicas struct {
	mu      sync.Mutex
	desired map[string]int
	routes  map[string]*supervisor.Route
	backend string // the address every function's route leads to
}

func (r *replicas) Apply(fns map[string]*config.Function) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for name := range r.desired {
		if _, ok := fns[name]; !ok {
			delete(r.desired, name)
			delete(r.routes, name)
		}
	}
	for name, f := range fns {
		if _, ok := r.desired[name]; !ok {
			r.desired[name] = 1
			r.routes[name] = supervisor.NewStaticRoute(f, r.backend)
		}
	}
}

func (r *replicas) Status(name string) (supervisor.Status, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, ok := r.desired[name]
	usage := &supervisor.Usage{CPUMillis: 12, MemoryBytes: 10 << 20}
	return supervisor.Status{Name: name, Desired: n, Ready: n, State: "ready", Usage: usage}, ok
}

func (r *replicas) Scale(name string, n int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.desired[name]; !ok {
		return supervisor.ErrNotFound
	}
	r.desired[name] = n
	return nil
}

func (r *replicas) Logs(string) (*supervisor.Logs, bool) { return nil, false }
func (r *replicas) RefreshSecret(string) error           { return nil }

func (r *replicas) Route(name string) (*supervisor.Route, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rt, ok := r.routes[name]
	return rt, ok
}

func (r *replicas) RouteForHost(string) (*supervisor.Route, bool) { return nil, false }

// gateway is a gateway with basic auth, serving file-fn from its configuration file.
type gateway struct {
	url      string
	password string
	replicas *replicas
	catalog  *catalog.Catalog
}

func startGateway(t *testing.T) *gateway {
	t.Helper()
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/missing" {
			http.Error(w, "the function's own 404", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("X-Test")+" "+string(body))
	}))
	t.Cleanup(backend.Close)
	state := statedir.New(t.TempDir())
	user, password, err := state.EnsureBasicAuth()
	if err != nil {
		t.Fatal(err)
	}
	r := &replicas{desired: map[string]int{}, routes: map[string]*supervisor.Route{}, backend: strings.TrimPrefix(backend.URL, "http://")}
	log := slog.New(slog.DiscardHandler)
	cat, err := catalog.Open(state, config.Gateway{UpstreamTimeout: time.Minute}, r, log)
	if err != nil {
		t.Fatal(err)
	}
	cat.SetFile("faasd.toml", map[string]*config.Function{"file-fn": {Name: "file-fn", Fprocess: "cat", Workdir: "/", Timeout: time.Minute}})
	px := proxy.New(proxy.Options{
		Catalog: cat, Control: r, Backends: r, Logger: log,
		Credentials: &proxy.Credentials{User: user, Password: password},
		ReadTimeout: time.Minute, WriteTimeout: time.Minute, HoldTimeout: time.Second, MaxBodyBytes: 1 << 20,
		Version: "test-version",
	})
	srv := httptest.NewServer(px)
	t.Cleanup(srv.Close)
	return &gateway{url: srv.URL, password: password, replicas: r, catalog: cat}
}

// cli runs faasd's command line in-process as main would, with its own faas-cli config.
type cli struct {
	t   *testing.T
	env map[string]string
}

func newCLI(t *testing.T) *cli {
	return &cli{t: t, env: map[string]string{"OPENFAAS_CONFIG": t.TempDir(), "HOME": t.TempDir()}}
}

type result struct {
	stdout, stderr string
	code           int
}

func (c *cli) run(stdin string, args ...string) result {
	c.t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := run(ctx, args, func(k string) string { return c.env[k] }, strings.NewReader(stdin), &out, &errb)
	r := result{stdout: out.String(), stderr: errb.String()}
	if err != nil {
		r.stderr += "faasd: " + err.Error() + "\n"
		r.code = exitCode(err)
	}
	return r
}

// loggedIn is a command line logged in to gw.
func loggedIn(t *testing.T, gw *gateway) *cli {
	t.Helper()
	c := newCLI(t)
	c.env["OPENFAAS_URL"] = gw.url
	if r := c.run(gw.password, "login", "--password-stdin"); r.code != 0 {
		t.Fatalf("login: %+v", r)
	}
	return c
}

func TestCommandsAgainstAGateway(t *testing.T) {
	gw := startGateway(t)
	c := loggedIn(t, gw)
	if err := gw.catalog.Create(api.Deployment{Service: "echo", EnvProcess: "cat", Labels: map[string]string{"team": "a"}, Limits: &api.Resources{Memory: "64Mi", Pids: 128}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		stdin  string
		args   []string
		code   int
		stdout []string // each must appear
		stderr string   // must appear
	}{
		{"list", "", []string{"list"}, 0, []string{"Function", "echo", "file-fn"}, ""},
		{"list -v", "", []string{"list", "-v"}, 0, []string{"Command", "Source", "cat", "ready", "api", "file"}, ""},
		{"list --json", "", []string{"list", "--json"}, 0, []string{`"name": "echo"`, `"source": "api"`}, ""},
		{"list takes no names", "", []string{"list", "echo"}, 2, nil, "list takes no arguments"},
		{"describe", "", []string{"describe", "echo"}, 0, []string{"Name:", "echo", "1 desired, 1 ready", "Limits:", "memory 64Mi, pids 128", "Usage:", "12m CPU, 10.0 MiB memory", "team=a", gw.url + "/function/echo"}, ""},
		{"describe --json", "", []string{"describe", "echo", "--json"}, 0, []string{`"name": "echo"`}, ""},
		{"describe unknown", "", []string{"describe", "nope"}, 1, nil, "faasd: no such function: nope\n"},
		{"describe --json unknown", "", []string{"describe", "--json", "nope"}, 1, nil, "faasd: no such function: nope\n"},
		{"scale", "", []string{"scale", "echo", "--replicas", "3"}, 0, []string{"Scaled echo to 3 replicas\n"}, ""},
		{"scale unknown", "", []string{"scale", "nope", "-r", "1"}, 1, nil, "no such function: nope"},
		{"scale needs a count", "", []string{"scale", "echo"}, 2, nil, "scale needs --replicas N"},
		{"invoke", "hi", []string{"invoke", "echo", "-m", "put", "-q", "a=1", "-H", "X-Test=yes"}, 0, []string{"PUT /?a=1 yes hi"}, ""},
		{"invoke an unknown function", "", []string{"invoke", "nope"}, 1, nil, "faasd: no such function: nope\n"},
		{"version", "", []string{"version"}, 0, []string{"faasd client", "gateway " + gw.url, "provider: faasd-process (processes)", "version:  test-version"}, ""},
		{"version --client", "", []string{"version", "--client"}, 0, []string{"faasd client"}, ""},
		{"secret create", "s3cret\n", []string{"secret", "create", "api-key"}, 0, []string{"Created secret api-key\n"}, ""},
		{"secret create again", "", []string{"secret", "create", "api-key", "--from-literal", "x"}, 1, nil, "secret api-key already exists: change it with `faasd secret update api-key`"},
		{"secret update", "", []string{"secret", "update", "api-key", "--from-literal", "new"}, 0, []string{"Updated secret api-key\n"}, ""},
		{"secret update unknown", "", []string{"secret", "update", "nope", "--from-literal", "x"}, 1, nil, "no such secret: nope"},
		{"secret list", "", []string{"secret", "ls"}, 0, []string{"NAME", "api-key"}, ""},
		{"secret with both sources", "", []string{"secret", "create", "x", "--from-literal", "a", "--from-file", "b"}, 2, nil, "use one"},
		{"secret empty", "\n", []string{"secret", "create", "x"}, 2, nil, "the secret value is empty"},
		{"secret remove", "", []string{"secret", "rm", "api-key"}, 0, []string{"Removed secret api-key\n"}, ""},
		{"secret unknown action", "", []string{"secret", "frob"}, 2, nil, `unknown action "frob"`},
		{"remove the file's function", "", []string{"remove", "file-fn"}, 1, nil, "cannot remove file-fn: function file-fn: defined in the configuration file faasd.toml: remove it there"},
		{"remove", "", []string{"remove", "echo"}, 0, []string{"Removed echo\n"}, ""},
		{"remove again", "", []string{"remove", "echo"}, 1, nil, "no such function: echo"},
		{"logs of an unknown function", "", []string{"logs", "nope"}, 1, nil, "no such function: nope"},
		{"logs --since nonsense", "", []string{"logs", "file-fn", "--since", "yesterday"}, 2, nil, "neither a duration"},
		{"unknown command", "", []string{"frobnicate"}, 2, nil, `unknown command "frobnicate"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := c.run(tc.stdin, tc.args...)
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, tc.code, r.stdout, r.stderr)
			}
			for _, want := range tc.stdout {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
				}
			}
			if !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.stderr, r.stderr)
			}
		})
	}
	if st, _ := gw.replicas.Status("file-fn"); st.Desired != 1 {
		t.Errorf("file-fn desired %d after the table, want 1", st.Desired)
	}
}

func TestLoginStoresWhatLaterCommandsUse(t *testing.T) {
	gw := startGateway(t)
	c := newCLI(t)
	if r := c.run("", "list", "--gateway", gw.url); r.code != 1 || !strings.Contains(r.stderr, "the gateway at "+gw.url+" wants credentials (401): run `faasd login --gateway "+gw.url+"`") {
		t.Errorf("before login: %+v", r)
	}
	if r := c.run("", "login", "--gateway", gw.url, "-p", "wrong"); r.code != 1 || !strings.Contains(r.stderr, "refused the credentials from the command line (401)") {
		t.Errorf("wrong password: %+v", r)
	}
	if r := c.run("", "login", "--gateway", gw.url, "-p", gw.password, "--password-stdin"); r.code != 2 {
		t.Errorf("two passwords: %+v", r)
	}
	r := c.run(gw.password+"\n", "login", "--gateway", strings.ToUpper(gw.url)+"/", "--password-stdin")
	path := filepath.Join(c.env["OPENFAAS_CONFIG"], "config.yml")
	if r.code != 0 || r.stdout != "Credentials of admin for "+gw.url+" saved in "+path+"\n" {
		t.Fatalf("login: %+v", r)
	}
	b, err := os.ReadFile(path)
	token := base64.StdEncoding.EncodeToString([]byte("admin:" + gw.password))
	if err != nil || string(b) != "auths:\n  - gateway: "+gw.url+"\n    auth: basic\n    token: "+token+"\n" {
		t.Errorf("config.yml: %q %v", b, err)
	}
	if r := c.run("", "list", "--gateway", gw.url); r.code != 0 || !strings.Contains(r.stdout, "file-fn") {
		t.Errorf("list after login: %+v", r)
	}
	os.WriteFile(path, []byte("auths:\n- gateway: "+gw.url+"\n  auth: basic\n  token: "+base64.StdEncoding.EncodeToString([]byte("admin:nope"))+"\n"), 0o600)
	if r := c.run("", "list", "--gateway", gw.url); r.code != 1 || !strings.Contains(r.stderr, "refused the credentials from "+path+" (401)") {
		t.Errorf("stale stored login: %+v", r)
	}
}

func TestUnreachableGatewayIsOneLine(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c := newCLI(t)
	for _, args := range [][]string{{"list"}, {"invoke", "x"}, {"logs", "x"}, {"version"}} {
		r := c.run("", append(args, "--gateway", url)...)
		if r.code != 1 || !strings.HasPrefix(r.stderr, "faasd: cannot reach the gateway at "+url+" (is `faasd serve` running? set --gateway or OPENFAAS_URL): ") || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%v: %+v", args, r)
		}
	}
}

// A reload the daemon refused is told by list and describe (on stderr, beside their
// output) until the file loads again.
func TestListAndDescribeTellARefusedReload(t *testing.T) {
	gw := startGateway(t)
	c := loggedIn(t, gw)
	gw.catalog.RefuseFile("/srv/faasd.toml", errors.New("/srv/faasd.toml:2: functions.a.lables: unknown key (did you mean labels?)\n/srv/faasd.toml:5: functions.b.command: want a list of strings"))
	for _, args := range [][]string{{"list"}, {"list", "-v"}, {"describe", "file-fn"}} {
		r := c.run("", args...)
		if r.code != 0 || !strings.Contains(r.stdout, "file-fn") {
			t.Fatalf("%v: %+v", args, r)
		}
		for _, want := range []string{
			"Warning: the daemon refused to reload /srv/faasd.toml at ",
			" and runs it as loaded at ",
			"\n  /srv/faasd.toml:2: functions.a.lables: unknown key (did you mean labels?)\n  /srv/faasd.toml:5: functions.b.command: want a list of strings\n",
		} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("%v: stderr lacks %q:\n%s", args, want, r.stderr)
			}
		}
	}
	gw.catalog.SetFile("/srv/faasd.toml", map[string]*config.Function{"file-fn": {Name: "file-fn", Fprocess: "cat", Workdir: "/", Timeout: time.Minute}})
	if r := c.run("", "list"); r.code != 0 || r.stderr != "" {
		t.Errorf("list after a good reload: %+v", r)
	}
}
