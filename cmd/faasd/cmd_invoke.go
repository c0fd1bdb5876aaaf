package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// invokeCmd calls a function: stdin is the body, the answer's body goes to stdout.
type invokeCmd struct {
	client      clientFlags
	method      string
	contentType string
	headers     keyValues
	query       keyValues
	async       bool
	callback    string
}

func (c *invokeCmd) flags(fs *flag.FlagSet) {
	c.client.register(fs)
	fs.StringVar(&c.method, "method", "POST", "HTTP method")
	fs.StringVar(&c.method, "m", "POST", "same as --method")
	fs.StringVar(&c.contentType, "content-type", "text/plain", "Content-Type of the body")
	fs.Var(&c.headers, "header", "request header `key=value` (repeatable)")
	fs.Var(&c.headers, "H", "same as --header")
	fs.Var(&c.query, "query", "query parameter `key=value` (repeatable)")
	fs.Var(&c.query, "q", "same as --query")
	fs.BoolVar(&c.async, "async", false, "queue the call and return at once with its X-Call-Id (202)")
	fs.BoolVar(&c.async, "a", false, "same as --async")
	fs.StringVar(&c.callback, "callback", "", "with --async: `URL` the result is POSTed to")
}

func (c *invokeCmd) run(ctx context.Context, env *environment, args []string) error {
	ctx, stop := interruptible(ctx)
	defer stop()
	name, err := oneName("invoke", args)
	if err != nil {
		return err
	}
	gw, err := c.client.connect(env)
	if err != nil {
		return err
	}
	method := strings.ToUpper(c.method)
	var body io.Reader = http.NoBody
	if !(isTerminal(env.stdin) && (method == "GET" || method == "HEAD")) {
		if isTerminal(env.stdin) {
			fmt.Fprintln(env.stderr, "Reading the body from standard input: end it with Ctrl-D")
		}
		data, err := io.ReadAll(env.stdin)
		if err != nil {
			return fmt.Errorf("read body: %w", err)
		}
		body = bytes.NewReader(data)
	}
	if c.callback != "" && !c.async {
		return fmt.Errorf("%w: --callback needs --async", errUsage)
	}
	route := "/function/"
	if c.async {
		route = "/async-function/"
	}
	path := route + url.PathEscape(name)
	if len(c.query) > 0 {
		q := url.Values{}
		for _, p := range c.query {
			q.Add(p.key, p.value)
		}
		path += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, gw.url+path, body)
	if err != nil {
		return fmt.Errorf("invoke %s: %w", name, err)
	}
	req.Header.Set("Content-Type", c.contentType)
	for _, h := range c.headers {
		req.Header.Add(h.key, h.value)
	}
	if c.callback != "" {
		req.Header.Set("X-Callback-Url", c.callback)
	}
	// Functions are open; system credentials never go to them.
	resp, err := gw.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("cannot reach the gateway at %s (is `faasd serve` running? set --gateway or OPENFAAS_URL): %w", gw.url, unwrapURLError(err))
	}
	defer resp.Body.Close()
	if c.async && resp.StatusCode == http.StatusAccepted {
		// The id on stdout for scripts; the words for people.
		fmt.Fprintln(env.stderr, "Function submitted asynchronously.")
		fmt.Fprintln(env.stdout, resp.Header.Get("X-Call-Id"))
		return nil
	}
	var answer io.Reader = resp.Body
	if resp.StatusCode == http.StatusNotFound {
		// The gateway's own 404 says the name is unknown; a function's 404 is its answer.
		head := make([]byte, 512)
		n, _ := io.ReadFull(resp.Body, head)
		if bytes.HasPrefix(head[:n], []byte("error finding function ")) {
			return fmt.Errorf("no such function: %s", name)
		}
		answer = io.MultiReader(bytes.NewReader(head[:n]), resp.Body)
	}
	if _, err := io.Copy(env.stdout, answer); err != nil && ctx.Err() == nil {
		return fmt.Errorf("invoke %s: reading the answer: %w", name, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s answered %s", name, resp.Status)
	}
	return nil
}

// isTerminal reports whether r is an interactive terminal.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// keyValues is a repeatable key=value flag.
type keyValues []kv

func (k *keyValues) String() string {
	var parts []string
	for _, p := range *k {
		parts = append(parts, p.key+"="+p.value)
	}
	return strings.Join(parts, ",")
}

func (k *keyValues) Set(s string) error {
	key, value, ok := strings.Cut(s, "=")
	if !ok || key == "" {
		return fmt.Errorf("want key=value, got %q", s)
	}
	*k = append(*k, kv{key, value})
	return nil
}
