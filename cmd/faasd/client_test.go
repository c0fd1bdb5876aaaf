package main

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"faasd/config"
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

func TestListenURL(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:8080": "http://127.0.0.1:8080",
		":8080":          "http://127.0.0.1:8080",
		"[::]:8080":      "http://127.0.0.1:8080",
		"[::1]:8080":     "http://[::1]:8080",
		"10.0.0.5:80":    "http://10.0.0.5:80",
	} {
		if got := listenURL(addr); got != want {
			t.Errorf("listenURL(%q) = %q, want %q", addr, got, want)
		}
	}
}

func TestSameAddress(t *testing.T) {
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
		if got := sameAddress(tc.a, tc.b); got != tc.want {
			t.Errorf("sameAddress(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestLocalCredentialsOnlyForTheStacksDaemon(t *testing.T) {
	dir := t.TempDir()
	creds := filepath.Join(dir, "credentials")
	os.MkdirAll(creds, 0o700)
	os.WriteFile(filepath.Join(creds, "basic-auth-user"), []byte("admin\n"), 0o600)
	os.WriteFile(filepath.Join(creds, "basic-auth-password"), []byte("s3cret\n"), 0o600)
	cfg := &config.Config{Gateway: config.Gateway{Listen: "127.0.0.1:8080", StateDir: dir, Auth: true}}
	if u, p, _, ok := localCredentials(cfg, "http://localhost:8080"); !ok || u != "admin" || p != "s3cret" {
		t.Errorf("local daemon: got %q %q %v, want admin s3cret true", u, p, ok)
	}
	if _, _, _, ok := localCredentials(cfg, "http://gw.example.com:8080"); ok {
		t.Error("the local password was offered to another gateway")
	}
	cfg.Gateway.Auth = false
	if _, _, _, ok := localCredentials(cfg, "http://127.0.0.1:8080"); ok {
		t.Error("credentials used for a daemon without auth")
	}
}

func TestCredentialsPath(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"OPENFAAS_CONFIG wins", map[string]string{"OPENFAAS_CONFIG": "/etc/of", "CI": "true", "HOME": "/root"}, "/etc/of/config.yml"},
		{"CI uses the working directory", map[string]string{"CI": "true", "HOME": "/root"}, ".openfaas/config.yml"},
		{"CI=1 too", map[string]string{"CI": "1", "HOME": "/root"}, ".openfaas/config.yml"},
		{"else the home directory", map[string]string{"CI": "false", "HOME": "/home/me"}, "/home/me/.openfaas/config.yml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := credentialsPath(func(k string) string { return tc.env[k] })
			if err != nil || got != tc.want {
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if _, err := credentialsPath(func(string) string { return "" }); err == nil {
		t.Error("no HOME and no OPENFAAS_CONFIG: want an error")
	}
}

func TestAuthFileRead(t *testing.T) {
	for _, tc := range []struct {
		name string
		text string
		want []*authEntry
	}{
		{"faas-cli login's file", "auths:\n- gateway: http://127.0.0.1:8080\n  auth: basic\n  token: YWRtaW46c2VjcmV0\n",
			[]*authEntry{{fields: []kv{{"gateway", "http://127.0.0.1:8080"}, {"auth", "basic"}, {"token", "YWRtaW46c2VjcmV0"}}}}},
		{"four-space indentation, quotes and comments", "# written by hand\nauths:\n    - gateway: \"http://a:1\"  # first\n      auth: 'basic'\n      token: abc\n    - gateway: http://b:2\n      auth: oauth2\n      token: t\n      options:\n        client_id: x\n        scope: \"openid profile\"\n",
			[]*authEntry{
				{fields: []kv{{"gateway", "http://a:1"}, {"auth", "basic"}, {"token", "abc"}}},
				{fields: []kv{{"gateway", "http://b:2"}, {"auth", "oauth2"}, {"token", "t"}}, options: []kv{{"client_id", "x"}, {"scope", "openid profile"}}},
			}},
		{"dash alone on its line", "auths:\n-\n  gateway: http://c:3\n  auth: basic\n  token: q\n",
			[]*authEntry{{fields: []kv{{"gateway", "http://c:3"}, {"auth", "basic"}, {"token", "q"}}}}},
		{"empty list", "auths: []\n", nil},
		{"empty file", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := parseAuthFile([]byte(tc.text))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(f.entries, tc.want) {
				t.Errorf("got %+v, want %+v", f.entries, tc.want)
			}
		})
	}
}

func TestAuthFileRefusesWhatItCannotKeep(t *testing.T) {
	for _, text := range []string{
		"auths:\n- gateway: x\nother: 1\n",            // a key it would drop
		"auths:\n- gateway: x\n  token: |\n    abc\n", // block scalar
		"auths: {a: b}\n",                             // flow map
		"auths:\n- gateway: x\n   auth: basic\n",      // bad indentation
	} {
		if _, err := parseAuthFile([]byte(text)); err == nil {
			t.Errorf("parseAuthFile(%q): want an error", text)
		}
	}
}

func TestAuthFileRoundTrip(t *testing.T) {
	f := &authFile{}
	f.setBasic("http://127.0.0.1:8080", "admin", "s3cret")
	f.setBasic("http://gw.example.com", "me", "p:ss word#1")
	f.entries = append(f.entries, &authEntry{fields: []kv{{"gateway", "http://o"}, {"auth", "oauth2"}, {"token", "true"}, {"extra", "a: b"}}, options: []kv{{"k", "v"}}})
	f.setBasic("http://127.0.0.1:8080", "admin", "changed") // replaces, keeps the order
	want := "auths:\n- gateway: http://127.0.0.1:8080\n  auth: basic\n  token: YWRtaW46Y2hhbmdlZA==\n" +
		"- gateway: http://gw.example.com\n  auth: basic\n  token: bWU6cDpzcyB3b3JkIzE=\n" +
		"- gateway: http://o\n  auth: oauth2\n  token: \"true\"\n  extra: \"a: b\"\n  options:\n    k: v\n"
	if got := string(f.marshal()); got != want {
		t.Fatalf("marshal:\n%s\nwant:\n%s", got, want)
	}
	back, err := parseAuthFile(f.marshal())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.entries, f.entries) {
		t.Errorf("round trip: got %+v, want %+v", back.entries, f.entries)
	}
	e, _ := back.lookup("http://gw.example.com")
	if u, p, err := e.basicAuth(); err != nil || u != "me" || p != "p:ss word#1" {
		t.Errorf("basicAuth = %q %q %v", u, p, err)
	}
}

func TestAuthFileWriteMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "of", "config.yml")
	f := &authFile{}
	f.setBasic("http://x:1", "a", "b")
	if err := f.write(path); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{path: 0o600, filepath.Dir(path): 0o700} {
		info, err := os.Stat(p)
		if err != nil || info.Mode().Perm() != want {
			t.Errorf("%s: mode %v (%v), want %v", p, info.Mode().Perm(), err, want)
		}
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
