package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"faasd/client"
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
	if c.callback != "" && !c.async {
		return fmt.Errorf("%w: --callback needs --async", errUsage)
	}
	gw, err := c.client.connect(env)
	if err != nil {
		return err
	}
	inv := client.Invocation{
		Function: name,
		Method:   strings.ToUpper(c.method),
		Header:   http.Header{"Content-Type": {c.contentType}},
		Query:    url.Values{},
		Async:    c.async,
		Callback: c.callback,
	}
	if !(isTerminal(env.stdin) && (inv.Method == "GET" || inv.Method == "HEAD")) {
		if isTerminal(env.stdin) {
			fmt.Fprintln(env.stderr, "Reading the body from standard input: end it with Ctrl-D")
		}
		data, err := io.ReadAll(env.stdin)
		if err != nil {
			return fmt.Errorf("read body: %w", err)
		}
		inv.Body = bytes.NewReader(data)
	}
	for _, p := range c.query {
		inv.Query.Add(p.key, p.value)
	}
	for _, h := range c.headers {
		inv.Header.Add(h.key, h.value)
	}
	resp, err := gw.Invoke(ctx, inv)
	switch {
	case errors.Is(err, client.ErrNoFunction):
		return fmt.Errorf("no such function: %s", name)
	case err != nil && ctx.Err() != nil:
		return nil // interrupted
	case err != nil:
		return err
	}
	defer resp.Body.Close()
	if c.async && resp.StatusCode == http.StatusAccepted {
		// The id on stdout for scripts; the words for people.
		fmt.Fprintln(env.stderr, "Function submitted asynchronously.")
		fmt.Fprintln(env.stdout, resp.Header.Get("X-Call-Id"))
		return nil
	}
	if _, err := io.Copy(env.stdout, resp.Body); err != nil && ctx.Err() == nil {
		return fmt.Errorf("invoke %s: reading the answer: %w", name, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s answered %s", name, resp.Status)
	}
	return nil
}

// isTerminal reports whether r is an interactive terminal: one that has terminal
// attributes, not any character device (/dev/null is one too).
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// keyValues is a repeatable key=value flag.
type keyValues []kv

type kv struct{ key, value string }

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
