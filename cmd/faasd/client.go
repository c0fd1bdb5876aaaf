package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"faasd/api"
	"faasd/config"
)

// defaultGateway is where a client looks for faasd when nothing says otherwise.
const defaultGateway = "http://127.0.0.1:8080"

// apiTimeout bounds one /system call; logs and invocations stream without a bound.
const apiTimeout = 30 * time.Second

// clientFlags are the flags every client subcommand shares.
type clientFlags struct {
	gateway string
	stack   string // -f; empty means faasd.toml, used only if it exists
}

func (c *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.gateway, "gateway", "", "gateway URL (default $OPENFAAS_URL, else the stack file's [gateway] listen, else "+defaultGateway+")")
	fs.StringVar(&c.gateway, "g", "", "gateway URL (same as --gateway)")
	fs.StringVar(&c.stack, "f", "", "stack file (default faasd.toml, when it exists): its [gateway] gives the local daemon's address and credentials")
}

// stackFile is the path of the stack file and whether it was named explicitly.
func (c *clientFlags) stackFile() (string, bool) {
	if c.stack != "" {
		return c.stack, true
	}
	return "faasd.toml", false
}

// localStack reads the stack file for the gateway's address and credentials: a file named
// with -f must load; the default faasd.toml counts only when it exists and parses.
func (c *clientFlags) localStack() (*config.Config, error) {
	path, explicit := c.stackFile()
	cfg, err := config.Load(path)
	if err != nil {
		if explicit {
			return nil, err
		}
		return nil, nil
	}
	return cfg, nil
}

// connect resolves the gateway and its credentials for a command.
func (c *clientFlags) connect(env *environment) (*gateway, error) {
	cfg, err := c.localStack()
	if err != nil {
		return nil, err
	}
	return connectTo(env, c.gateway, cfg)
}

// connectTo resolves the gateway URL and its credentials: stored ones (faasd login,
// faas-cli login) first, then, for the daemon a local stack file describes, the password
// it generated into its state directory.
func connectTo(env *environment, flagURL string, cfg *config.Config) (*gateway, error) {
	gw := &gateway{url: resolveGateway(flagURL, env.getenv("OPENFAAS_URL"), cfg), http: &http.Client{}}
	path, err := credentialsPath(env.getenv)
	if err != nil {
		return nil, err
	}
	file, err := readAuthFile(path)
	if err != nil {
		return nil, err
	}
	if e, ok := file.lookup(gw.url); ok {
		if e.get("auth") == "basic" {
			user, pass, err := e.basicAuth()
			if err != nil {
				return nil, err
			}
			gw.user, gw.password, gw.credsFrom = user, pass, path
		} else {
			gw.bearer, gw.credsFrom = e.get("token"), path
		}
		return gw, nil
	}
	if user, pass, from, ok := localCredentials(cfg, gw.url); ok {
		gw.user, gw.password, gw.credsFrom = user, pass, from
	}
	return gw, nil
}

// resolveGateway picks the gateway URL: the flag, else $OPENFAAS_URL, else the address the
// local stack file's daemon serves its API on, else the default; normalised as faas-cli does, so
// that stored credentials match.
func resolveGateway(flagURL, envURL string, cfg *config.Config) string {
	switch {
	case flagURL != "":
		return normaliseURL(flagURL)
	case envURL != "":
		return normaliseURL(envURL)
	case cfg != nil:
		return listenURL(cfg.Gateway.APIAddress())
	}
	return defaultGateway
}

// normaliseURL lower-cases a gateway URL, drops trailing slashes and adds http:// when
// there is no scheme, as `faas-cli login` does before it stores the URL.
func normaliseURL(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.TrimRight(s, "/")
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	return s
}

// listenURL is the URL a client on this host uses for a daemon listening on addr; an
// unspecified host (":8080", "0.0.0.0:8080") is reached on the loopback address.
func listenURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return normaliseURL(addr)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return normaliseURL(net.JoinHostPort(host, port))
}

// localCredentials reads the password a local daemon generated into its state directory,
// when the stack file describes the daemon at gatewayURL.
func localCredentials(cfg *config.Config, gatewayURL string) (user, password, from string, ok bool) {
	if cfg == nil || !cfg.Gateway.Auth || !sameAddress(listenURL(cfg.Gateway.APIAddress()), gatewayURL) {
		return "", "", "", false
	}
	dir := filepath.Join(cfg.Gateway.StateDir, "credentials")
	u, uerr := os.ReadFile(filepath.Join(dir, "basic-auth-user"))
	p, perr := os.ReadFile(filepath.Join(dir, "basic-auth-password"))
	if uerr != nil || perr != nil {
		return "", "", "", false
	}
	return strings.TrimSpace(string(u)), strings.TrimSpace(string(p)), dir, true
}

// sameAddress reports whether two gateway URLs reach the same local listener: the same
// port, and hosts that are equal or both loopback.
func sameAddress(a, b string) bool {
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	if err1 != nil || err2 != nil || ua.Port() != ub.Port() || ua.Port() == "" {
		return false
	}
	loopback := func(h string) bool {
		ip := net.ParseIP(h)
		return h == "localhost" || ip != nil && ip.IsLoopback()
	}
	return ua.Hostname() == ub.Hostname() || loopback(ua.Hostname()) && loopback(ub.Hostname())
}

// gateway is one gateway's API as the CLI uses it.
type gateway struct {
	url       string
	user      string
	password  string
	bearer    string
	credsFrom string // where the credentials came from, for messages
	http      *http.Client
}

// apiError is a /system answer outside the statuses a call expects.
type apiError struct {
	Status int
	Body   string
}

func (e *apiError) Error() string {
	msg := strings.TrimSpace(e.Body)
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	return fmt.Sprintf("%d: %s", e.Status, msg)
}

// isStatus reports whether err is an API answer with that status.
func isStatus(err error, status int) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.Status == status
}

// request sends one request to the gateway. Transport failures and 401 become the one-line
// errors a user needs; other statuses are the caller's to judge.
func (g *gateway) request(ctx context.Context, method, path string, body io.Reader, auth bool) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, g.url+path, body)
	if err != nil {
		return nil, fmt.Errorf("gateway %s: %w", g.url, err)
	}
	if auth {
		switch {
		case g.user != "":
			req.SetBasicAuth(g.user, g.password)
		case g.bearer != "":
			req.Header.Set("Authorization", "Bearer "+g.bearer)
		}
	}
	resp, err := g.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("cannot reach the gateway at %s (is `faasd serve` running? set --gateway or OPENFAAS_URL): %w", g.url, unwrapURLError(err))
	}
	if auth && resp.StatusCode == http.StatusUnauthorized {
		resp.Body.Close()
		if g.credsFrom == "" {
			return nil, fmt.Errorf("the gateway at %s wants credentials (401): run `faasd login --gateway %s`", g.url, g.url)
		}
		return nil, fmt.Errorf("the gateway at %s refused the credentials from %s (401): run `faasd login --gateway %s`", g.url, g.credsFrom, g.url)
	}
	return resp, nil
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// call sends a /system request with a JSON body (when in is not nil), expects one of the
// ok statuses, and decodes a JSON answer into out (when not nil).
func (g *gateway) call(ctx context.Context, method, path string, in, out any, ok ...int) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		body = bytes.NewReader(b)
	}
	resp, err := g.request(ctx, method, path, body, true)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if len(ok) == 0 {
		ok = []int{http.StatusOK}
	}
	for _, s := range ok {
		if resp.StatusCode == s {
			if out != nil {
				if err := json.Unmarshal(data, out); err != nil {
					return resp.StatusCode, fmt.Errorf("%s %s: the gateway answered something other than the expected JSON: %w", method, path, err)
				}
			}
			return resp.StatusCode, nil
		}
	}
	return resp.StatusCode, &apiError{Status: resp.StatusCode, Body: string(data)}
}

// functionStatus is what the API answers for a function.
type functionStatus = api.FunctionStatus

// function fetches one function's status; an unknown one is a one-line error.
func (g *gateway) function(ctx context.Context, name string) (functionStatus, error) {
	var st functionStatus
	_, err := g.call(ctx, "GET", "/system/function/"+url.PathEscape(name), nil, &st)
	return st, notFound(err, "function", name)
}

// functions fetches every function's status.
func (g *gateway) functions(ctx context.Context) ([]functionStatus, error) {
	var list []functionStatus
	_, err := g.call(ctx, "GET", "/system/functions", nil, &list)
	return list, err
}

// notFound turns a 404 into "no such KIND: NAME" and keeps other errors.
func notFound(err error, kind, name string) error {
	if isStatus(err, http.StatusNotFound) {
		return fmt.Errorf("no such %s: %s", kind, name)
	}
	return err
}

// interruptible ends ctx on SIGINT or SIGTERM, for the commands that run until stopped
// (logs --follow, up --watch, a long invoke), so that they return and exit 0.
func interruptible(ctx context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}

func asAPIError(err error, target **apiError) bool { return errors.As(err, target) }

// logf reports a problem on standard error, one line, and carries on: for the loops that
// outlive a failure (up --watch).
func (e *environment) logf(format string, a ...any) {
	fmt.Fprintf(e.stderr, format+"\n", a...)
}
