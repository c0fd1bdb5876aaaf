// Package client calls a faasd gateway: the /system API (OpenFaaS's, with faasd's own
// routes) and the functions behind it. The faasd CLI, the end-to-end tests and the
// benchmarks use it. Its errors say what happened; advice for a user is the CLI's.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Timeout bounds one /system call; logs and invocations stream without a bound.
const Timeout = 30 * time.Second

// Gateway is one gateway's API.
type Gateway struct {
	URL  string // scheme://host:port, no trailing slash
	Auth Auth
	// AuthFrom says where Auth came from ("the command line", a file), for errors.
	AuthFrom string
	HTTP     *http.Client // nil: a client without timeouts of its own
}

// Auth is how /system requests authenticate; the zero value sends nothing. Functions never
// see it.
type Auth struct {
	User, Password string // basic auth, when User is set
	Token          string // a bearer token otherwise
}

// New returns a client of the gateway at url.
func New(url string, auth Auth) *Gateway {
	return &Gateway{URL: strings.TrimRight(url, "/"), Auth: auth}
}

// StatusError is an answer outside the statuses a call expects.
type StatusError struct {
	Status int
	Body   string
}

func (e *StatusError) Error() string {
	msg := strings.TrimSpace(e.Body)
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	return fmt.Sprintf("%d: %s", e.Status, msg)
}

// IsStatus reports whether err is an answer with that status.
func IsStatus(err error, status int) bool {
	se, ok := errors.AsType[*StatusError](err)
	return ok && se.Status == status
}

// AuthError is a 401 from /system: no credentials, or the wrong ones.
type AuthError struct {
	URL  string
	From string // Gateway.AuthFrom
}

func (e *AuthError) Error() string {
	if e.From == "" {
		return fmt.Sprintf("the gateway at %s wants credentials (401)", e.URL)
	}
	return fmt.Sprintf("the gateway at %s refused the credentials from %s (401)", e.URL, e.From)
}

// UnreachableError is a request that got no answer: nothing listens, or the connection
// broke.
type UnreachableError struct {
	URL string
	Err error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach the gateway at %s: %v", e.URL, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

func (g *Gateway) client() *http.Client {
	if g.HTTP != nil {
		return g.HTTP
	}
	return http.DefaultClient
}

// Do sends one /system request with the gateway's credentials and returns the answer,
// whatever its status but 401, for the caller to read and close.
func (g *Gateway) Do(ctx context.Context, method, path string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, g.URL+path, body)
	if err != nil {
		return nil, fmt.Errorf("gateway %s: %w", g.URL, err)
	}
	switch {
	case g.Auth.User != "":
		req.SetBasicAuth(g.Auth.User, g.Auth.Password)
	case g.Auth.Token != "":
		req.Header.Set("Authorization", "Bearer "+g.Auth.Token)
	}
	resp, err := g.send(ctx, req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusUnauthorized {
		resp.Body.Close()
		return nil, &AuthError{URL: g.URL, From: g.AuthFrom}
	}
	return resp, nil
}

// send sends a request; a failure of the caller's context is reported as such, any other
// failure to get an answer as unreachable.
func (g *Gateway) send(ctx context.Context, req *http.Request) (*http.Response, error) {
	resp, err := g.client().Do(req)
	if err == nil {
		return resp, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if ue, ok := errors.AsType[*url.Error](err); ok {
		err = ue.Err
	}
	return nil, &UnreachableError{URL: g.URL, Err: err}
}

// Call sends a /system request with a JSON body (when in is not nil), within Timeout,
// expects one of the ok statuses (default 200), decodes a JSON answer into out (when not
// nil) and returns the status.
func (g *Gateway) Call(ctx context.Context, method, path string, in, out any, ok ...int) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		body = bytes.NewReader(b)
	}
	resp, err := g.Do(ctx, method, path, body)
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
		if resp.StatusCode != s {
			continue
		}
		if out != nil {
			if err := json.Unmarshal(data, out); err != nil {
				return resp.StatusCode, fmt.Errorf("%s %s: the gateway answered something other than the expected JSON: %w", method, path, err)
			}
		}
		return resp.StatusCode, nil
	}
	return resp.StatusCode, &StatusError{Status: resp.StatusCode, Body: string(data)}
}

// ListenURL is the URL a client on this host uses for a daemon listening on addr; an
// unspecified host (":8080", "0.0.0.0:8080") is reached on the loopback address.
func ListenURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + strings.ToLower(addr)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + strings.ToLower(net.JoinHostPort(host, port))
}

// SameListener reports whether two gateway URLs reach the same local listener: the same
// port, and hosts that are equal or both loopback.
func SameListener(a, b string) bool {
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
