package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// ErrNoFunction is the gateway's answer for a function it does not know, which Invoke
// tells apart from a function's own 404.
var ErrNoFunction = errors.New("no such function")

// Invocation is one call of a function.
type Invocation struct {
	Function string
	Method   string // default POST
	Path     string // after the function's name, from "/"; default none
	Query    url.Values
	Header   http.Header
	Body     io.Reader // nil: none
	// Async queues the call (/async-function/): the gateway answers 202 with its
	// X-Call-Id at once, and POSTs the result to Callback, when set.
	Async    bool
	Callback string
}

// Invoke calls a function and returns its answer, whatever the status, for the caller to
// read and close. The gateway's credentials are never sent: functions are open, and a
// function must not see the operator's password.
func (g *Gateway) Invoke(ctx context.Context, inv Invocation) (*http.Response, error) {
	method := inv.Method
	if method == "" {
		method = http.MethodPost
	}
	body := inv.Body
	if body == nil {
		body = http.NoBody
	}
	route := "/function/"
	if inv.Async {
		route = "/async-function/"
	}
	u := g.URL + route + url.PathEscape(inv.Function) + inv.Path
	if len(inv.Query) > 0 {
		u += "?" + inv.Query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, fmt.Errorf("invoke %s: %w", inv.Function, err)
	}
	for k, vs := range inv.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if inv.Callback != "" {
		req.Header.Set("X-Callback-Url", inv.Callback)
	}
	resp, err := g.send(ctx, req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusNotFound {
		return gatewayNotFound(resp, inv.Function)
	}
	return resp, nil
}

// gatewayNotFound turns the gateway's own 404 into ErrNoFunction and hands any other 404,
// the function's answer, back whole.
func gatewayNotFound(resp *http.Response, name string) (*http.Response, error) {
	head := make([]byte, 512)
	n, _ := io.ReadFull(resp.Body, head)
	if bytes.HasPrefix(head[:n], []byte("error finding function ")) {
		resp.Body.Close()
		return nil, fmt.Errorf("%w: %s", ErrNoFunction, name)
	}
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(head[:n]), resp.Body), resp.Body}
	return resp, nil
}
