package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"faasd/api"
)

// gateway is a stand-in gateway that records the last request and answers with the
// status and body a test sets for a route.
type gateway struct {
	answers map[string]answer // "METHOD /path" → answer
	last    *http.Request
	body    string
}

type answer struct {
	status int
	body   string
}

func serve(t *testing.T, answers map[string]answer) (*Gateway, *gateway) {
	t.Helper()
	gw := &gateway{answers: answers}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gw.last, gw.body = r, string(b)
		a, ok := gw.answers[r.Method+" "+r.URL.Path]
		if !ok {
			http.Error(w, "404 page not found", http.StatusNotFound)
			return
		}
		w.WriteHeader(a.status)
		io.WriteString(w, a.body)
	}))
	t.Cleanup(srv.Close)
	return New(srv.URL+"/", Auth{User: "admin", Password: "pw"}), gw
}

func TestCallsSendWhatTheRouteTakes(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name       string
		route      string
		answer     answer
		call       func(g *Gateway) (any, error)
		wantBody   string // JSON the gateway got, compared as values
		wantResult any
	}{
		{"info", "GET /system/info", answer{200, `{"provider":{"provider":"faasd-process"},"arch":"amd64"}`},
			func(g *Gateway) (any, error) { i, err := g.Info(ctx); return i.Provider.Provider + " " + i.Arch, err },
			"", "faasd-process amd64"},
		{"functions", "GET /system/functions", answer{200, `[{"name":"a"},{"name":"b"}]`},
			func(g *Gateway) (any, error) { l, err := g.Functions(ctx); return len(l), err }, "", 2},
		{"function, name escaped", "GET /system/function/a b", answer{200, `{"name":"a b","replicas":2}`},
			func(g *Gateway) (any, error) { f, err := g.Function(ctx, "a b"); return f.Replicas, err }, "", uint64(2)},
		{"deploy", "POST /system/functions", answer{202, ""},
			func(g *Gateway) (any, error) {
				return nil, g.Deploy(ctx, api.Deployment{Service: "x", EnvProcess: "cat"})
			},
			`{"service":"x","image":"","envProcess":"cat"}`, nil},
		{"update", "PUT /system/functions", answer{202, ""},
			func(g *Gateway) (any, error) {
				return nil, g.Update(ctx, api.Deployment{Service: "x", Command: []string{"./srv"}})
			},
			`{"service":"x","image":"","command":["./srv"]}`, nil},
		{"delete", "DELETE /system/functions", answer{202, ""},
			func(g *Gateway) (any, error) { return nil, g.Delete(ctx, "x") }, `{"functionName":"x"}`, nil},
		{"scale", "POST /system/scale-function/x", answer{202, ""},
			func(g *Gateway) (any, error) { return nil, g.Scale(ctx, "x", 3) }, `{"serviceName":"x","replicas":3}`, nil},
		{"restart rolls over", "POST /system/restart-function/x", answer{202, ""},
			func(g *Gateway) (any, error) { return g.Restart(ctx, "x", "abc") }, `{"revision":"abc"}`, true},
		{"restart of the running revision", "POST /system/restart-function/x", answer{200, ""},
			func(g *Gateway) (any, error) { return g.Restart(ctx, "x", "abc") }, `{"revision":"abc"}`, false},
		{"secrets", "GET /system/secrets", answer{200, `[{"name":"k","namespace":"openfaas-fn"}]`},
			func(g *Gateway) (any, error) { s, err := g.Secrets(ctx); return s[0].Name, err }, "", "k"},
		{"create secret", "POST /system/secrets", answer{201, ""},
			func(g *Gateway) (any, error) { return nil, g.CreateSecret(ctx, "k", []byte("v\x00")) }, `{"name":"k","rawValue":"dgA="}`, nil},
		{"update secret", "PUT /system/secrets", answer{200, ""},
			func(g *Gateway) (any, error) { return nil, g.UpdateSecret(ctx, "k", []byte("w")) }, `{"name":"k","rawValue":"dw=="}`, nil},
		{"delete secret", "DELETE /system/secrets", answer{200, ""},
			func(g *Gateway) (any, error) { return nil, g.DeleteSecret(ctx, "k") }, `{"name":"k"}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, gw := serve(t, map[string]answer{tc.route: tc.answer})
			got, err := tc.call(g)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.wantResult {
				t.Errorf("result %v (%T), want %v (%T)", got, got, tc.wantResult, tc.wantResult)
			}
			if user, pass, _ := gw.last.BasicAuth(); user != "admin" || pass != "pw" {
				t.Errorf("basic auth %q %q, want the gateway's", user, pass)
			}
			if tc.wantBody != "" && !sameJSON(gw.body, tc.wantBody) {
				t.Errorf("body %s, want %s", gw.body, tc.wantBody)
			}
		})
	}
}

func sameJSON(a, b string) bool {
	var va, vb any
	if json.Unmarshal([]byte(a), &va) != nil || json.Unmarshal([]byte(b), &vb) != nil {
		return false
	}
	ja, _ := json.Marshal(va)
	jb, _ := json.Marshal(vb)
	return string(ja) == string(jb)
}

func TestErrorsSayWhatHappened(t *testing.T) {
	ctx := context.Background()
	g, _ := serve(t, map[string]answer{
		"GET /system/function/nope":     {404, "no such function: nope\n"},
		"POST /system/functions":        {409, "function x: already exists\nmore detail"},
		"GET /system/functions":         {401, "invalid credentials"},
		"GET /system/info":              {200, "<html>not JSON</html>"},
		"DELETE /system/secrets":        {500, ""},
		"POST /system/scale-function/x": {400, "replicas: 2000 is more than 1000"},
	})
	g.AuthFrom = "/home/me/.openfaas/config.yml"
	_, err := g.Function(ctx, "nope")
	if !IsStatus(err, 404) || err.Error() != "404: no such function: nope" {
		t.Errorf("unknown function: %v", err)
	}
	if err := g.Deploy(ctx, api.Deployment{Service: "x"}); !IsStatus(err, 409) || err.Error() != "409: function x: already exists" {
		t.Errorf("conflict, first line only: %v", err)
	}
	if err := g.DeleteSecret(ctx, "k"); err == nil || err.Error() != "500: Internal Server Error" {
		t.Errorf("an empty error body: %v", err)
	}
	if err := g.Scale(ctx, "x", 2000); !IsStatus(err, 400) || !strings.Contains(err.Error(), "more than 1000") {
		t.Errorf("bad request: %v", err)
	}
	_, err = g.Functions(ctx)
	var ae *AuthError
	if !errors.As(err, &ae) || err.Error() != "the gateway at "+g.URL+" refused the credentials from /home/me/.openfaas/config.yml (401)" {
		t.Errorf("refused credentials: %v", err)
	}
	g.AuthFrom = ""
	if _, err := g.Functions(ctx); err == nil || err.Error() != "the gateway at "+g.URL+" wants credentials (401)" {
		t.Errorf("no credentials: %v", err)
	}
	if _, err := g.Info(ctx); err == nil || !strings.Contains(err.Error(), "other than the expected JSON") {
		t.Errorf("not JSON: %v", err)
	}
}

func TestUnreachableAndCancelled(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	g := New("http://"+addr, Auth{})
	_, err = g.Functions(context.Background())
	var ue *UnreachableError
	if !errors.As(err, &ue) || !strings.HasPrefix(err.Error(), "cannot reach the gateway at http://"+addr+": ") || strings.Contains(err.Error(), "Get ") {
		t.Errorf("nothing listening: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := g.Functions(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v, want context.Canceled", err)
	}
}

func TestInvokeSendsNoCredentialsAndTellsTheGatewaysNotFound(t *testing.T) {
	var got *http.Request
	var gotBody string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		b, _ := io.ReadAll(r.Body)
		gotBody = string(b)
		switch r.URL.Path {
		case "/function/missing":
			http.Error(w, "error finding function missing: no such function", http.StatusNotFound)
		case "/function/web/page":
			http.Error(w, "the function's own page is missing", http.StatusNotFound)
		default:
			fmt.Fprintf(w, "hello %s", b)
		}
	}))
	defer srv.Close()
	g := New(srv.URL, Auth{User: "admin", Password: "pw"})
	ctx := context.Background()
	resp, err := g.Invoke(ctx, Invocation{Function: "echo", Method: "PUT", Query: url.Values{"a": {"1 2"}},
		Header: http.Header{"X-Test": {"yes"}}, Body: strings.NewReader("you")})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello you" || got.Method != "PUT" || got.URL.RawQuery != "a=1+2" || got.Header.Get("X-Test") != "yes" || gotBody != "you" {
		t.Errorf("invoke: %q, request %s %s %v", body, got.Method, got.URL, got.Header)
	}
	if _, _, ok := got.BasicAuth(); ok || got.Header.Get("Authorization") != "" {
		t.Error("the gateway's credentials reached a function")
	}
	if _, err := g.Invoke(ctx, Invocation{Function: "missing"}); !errors.Is(err, ErrNoFunction) {
		t.Errorf("unknown function: %v, want ErrNoFunction", err)
	}
	resp, err = g.Invoke(ctx, Invocation{Function: "web", Path: "/page", Method: "GET"})
	if err != nil {
		t.Fatalf("a function's own 404: %v", err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || string(body) != "the function's own page is missing\n" {
		t.Errorf("a function's own 404: %d %q", resp.StatusCode, body)
	}
}

func TestLogsStreamsMessages(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var query url.Values
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		query = r.URL.Query()
		if query.Get("name") == "nope" {
			http.Error(w, "no such function: nope", http.StatusNotFound)
			return
		}
		enc := json.NewEncoder(w)
		for _, text := range []string{"one", "two"} {
			enc.Encode(api.LogMessage{Name: "fn", Namespace: api.Namespace, Instance: "1", Timestamp: at, Text: text})
		}
		io.WriteString(w, "not json\n")
	}))
	defer srv.Close()
	g := New(srv.URL, Auth{})
	s, err := g.Logs(context.Background(), LogQuery{Name: "fn", Tail: 5, Since: at, Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := url.Values{"name": {"fn"}, "tail": {"5"}, "follow": {"true"}, "since": {"2026-01-02T03:04:05Z"}}
	if query.Encode() != want.Encode() {
		t.Errorf("query %s, want %s", query.Encode(), want.Encode())
	}
	var texts []string
	for s.Next() {
		if m := s.Message(); m.Name != "fn" || !m.Timestamp.Equal(at) {
			t.Errorf("message %+v", m)
		}
		texts = append(texts, s.Message().Text)
		if !strings.Contains(string(s.Line()), `"text":"`) {
			t.Errorf("line %s", s.Line())
		}
	}
	if strings.Join(texts, ",") != "one,two" || s.Err() == nil || !strings.Contains(s.Err().Error(), "not a log message") {
		t.Errorf("texts %q, err %v", texts, s.Err())
	}
	if _, err := g.Logs(context.Background(), LogQuery{Name: "nope", Tail: -1}); !IsStatus(err, 404) {
		t.Errorf("unknown function: %v", err)
	}
}

func TestListenURLAndSameListener(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:8080": "http://127.0.0.1:8080",
		":8080":          "http://127.0.0.1:8080",
		"[::]:8080":      "http://127.0.0.1:8080",
		"[::1]:8080":     "http://[::1]:8080",
		"10.0.0.5:80":    "http://10.0.0.5:80",
		"Gateway:80":     "http://gateway:80",
	} {
		if got := ListenURL(addr); got != want {
			t.Errorf("ListenURL(%q) = %q, want %q", addr, got, want)
		}
	}
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"http://127.0.0.1:8080", "http://localhost:8080", true},
		{"http://127.0.0.1:8080", "http://[::1]:8080", true},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8081", false},
		{"http://127.0.0.1:8080", "http://example.com:8080", false},
		{"http://10.0.0.5:8080", "http://10.0.0.5:8080", true},
		{"http://127.0.0.1", "http://127.0.0.1", false}, // no port: cannot tell
	} {
		if got := SameListener(tc.a, tc.b); got != tc.want {
			t.Errorf("SameListener(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}
