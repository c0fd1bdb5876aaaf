package main

import (
	"flag"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"faasd/config"
	"faasd/statedir"
)

func TestResolveGatewayOrder(t *testing.T) {
	stack := &config.Config{Gateway: config.Gateway{Listen: "0.0.0.0:9090"}}
	for _, tc := range []struct {
		name, flag, env string
		cfg             *config.Config
		want            string
	}{
		{"flag wins", "http://example.com:8080/", "http://env:1", stack, "http://example.com:8080"},
		{"then OPENFAAS_URL", "", "HTTP://Env.Local:31112", stack, "http://env.local:31112"},
		{"then the stack's listen, unspecified host on loopback", "", "", stack, "http://127.0.0.1:9090"},
		{"the stack's admin port when it has one", "", "", &config.Config{Gateway: config.Gateway{Listen: "0.0.0.0:9090", AdminListen: "127.0.0.1:9091"}}, "http://127.0.0.1:9091"},
		{"then the default", "", "", nil, "http://127.0.0.1:8080"},
		{"scheme added", "127.0.0.1:8081", "", nil, "http://127.0.0.1:8081"},
		{"https kept", "https://gw.example.com//", "", nil, "https://gw.example.com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := resolveGateway(tc.flag, tc.env, tc.cfg); got != tc.want {
				t.Errorf("resolveGateway(%q, %q) = %q, want %q", tc.flag, tc.env, got, tc.want)
			}
		})
	}
}

func TestLocalBasicAuthOnlyForTheStacksDaemon(t *testing.T) {
	state := statedir.New(t.TempDir())
	os.MkdirAll(state.BasicAuth(), 0o700)
	os.WriteFile(state.BasicAuthUser(), []byte("admin\n"), 0o600)
	os.WriteFile(state.BasicAuthPassword(), []byte("s3cret\n"), 0o600)
	cfg := &config.Config{Gateway: config.Gateway{Listen: "127.0.0.1:8080", StateDir: state.Root, Auth: true}}
	if u, p, from, ok := localBasicAuth(cfg, "http://localhost:8080"); !ok || u != "admin" || p != "s3cret" || from != state.BasicAuth() {
		t.Errorf("local daemon: got %q %q %q %v, want admin s3cret from %s", u, p, from, ok, state.BasicAuth())
	}
	if _, _, _, ok := localBasicAuth(cfg, "http://gw.example.com:8080"); ok {
		t.Error("the local password was offered to another gateway")
	}
	cfg.Gateway.Auth = false
	if _, _, _, ok := localBasicAuth(cfg, "http://127.0.0.1:8080"); ok {
		t.Error("credentials used for a daemon without auth")
	}
}

func TestParseFlagsAnywhere(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		positional []string
		replicas   int
		verbose    bool
	}{
		{[]string{"hello", "--replicas", "3"}, []string{"hello"}, 3, false},
		{[]string{"--replicas=2", "hello", "-v"}, []string{"hello"}, 2, true},
		{[]string{"a", "-v", "b"}, []string{"a", "b"}, -1, true},
		{[]string{"a", "--", "-v", "--replicas"}, []string{"a", "-v", "--replicas"}, -1, false},
		{[]string{}, nil, -1, false},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		replicas := fs.Int("replicas", -1, "")
		verbose := fs.Bool("v", false, "")
		pos, err := parseFlags(fs, tc.args)
		if err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		if !reflect.DeepEqual(pos, tc.positional) || *replicas != tc.replicas || *verbose != tc.verbose {
			t.Errorf("%q: got %q replicas=%d v=%v; want %q %d %v", tc.args, pos, *replicas, *verbose, tc.positional, tc.replicas, tc.verbose)
		}
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"10m":                  now.Add(-10 * time.Minute),
		"1h30m":                now.Add(-90 * time.Minute),
		"2026-01-01T00:00:00Z": time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		got, err := parseSince(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"yesterday", "-5m", ""} {
		if _, err := parseSince(bad, now); err == nil {
			t.Errorf("parseSince(%q): want an error", bad)
		}
	}
}

func TestKeyValuesFlag(t *testing.T) {
	var kvs keyValues
	for _, s := range []string{"a=1", "b=x=y", "c="} {
		if err := kvs.Set(s); err != nil {
			t.Fatal(err)
		}
	}
	if want := (keyValues{{"a", "1"}, {"b", "x=y"}, {"c", ""}}); !reflect.DeepEqual(kvs, want) {
		t.Errorf("got %v, want %v", kvs, want)
	}
	if err := kvs.Set("novalue"); err == nil || !strings.Contains(err.Error(), "key=value") {
		t.Errorf("Set(novalue) = %v, want a key=value error", err)
	}
}
