package cliconfig

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// rewrite reads text as the file, lets change edit it, writes it and returns what was
// written.
func rewrite(t *testing.T, text string, change func(*File)) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "of", "config.yml")
	if text != "" {
		os.MkdirAll(filepath.Dir(path), 0o700)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	f, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	change(f)
	if err := f.Write(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPath(t *testing.T) {
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
			got, err := Path(func(k string) string { return tc.env[k] })
			if err != nil || got != tc.want {
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if _, err := Path(func(string) string { return "" }); err == nil {
		t.Error("no HOME and no OPENFAAS_CONFIG: want an error")
	}
}

func TestNormalizeURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://example.com:8080/":   "http://example.com:8080",
		"HTTP://Env.Local:31112":     "http://env.local:31112",
		"127.0.0.1:8081":             "http://127.0.0.1:8081",
		" https://gw.example.com// ": "https://gw.example.com",
	} {
		if got := NormalizeURL(in); got != want {
			t.Errorf("NormalizeURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLoginsAreFoundAsFaasCliWroteThem(t *testing.T) {
	for _, tc := range []struct {
		name, text, gateway string
		want                Login
	}{
		{"faas-cli's file", "auths:\n- gateway: http://127.0.0.1:8080\n  auth: basic\n  token: YWRtaW46c2VjcmV0\n",
			"http://127.0.0.1:8080", Login{"http://127.0.0.1:8080", "basic", "YWRtaW46c2VjcmV0"}},
		{"indented, quoted, commented", "# by hand\nauths:\n    - gateway: \"http://a:1\"  # first\n      auth: 'basic'\n      token: abc\n",
			"http://a:1", Login{"http://a:1", "basic", "abc"}},
		{"flow style", "auths: [{gateway: http://b:2, auth: oauth2, token: t}]\n", "http://b:2", Login{"http://b:2", "oauth2", "t"}},
		{"an alias", "base: &tok abc\nauths:\n- gateway: http://c:3\n  auth: basic\n  token: *tok\n", "http://c:3", Login{"http://c:3", "basic", "abc"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.yml")
			os.WriteFile(path, []byte(tc.text), 0o600)
			f, err := Read(path)
			if err != nil {
				t.Fatal(err)
			}
			if got, ok := f.Login(tc.gateway); !ok || got != tc.want {
				t.Errorf("Login(%q) = %+v, %v; want %+v", tc.gateway, got, ok, tc.want)
			}
			if _, ok := f.Login(tc.gateway + "/"); ok {
				t.Error("a URL faas-cli would not match was matched")
			}
		})
	}
	missing, err := Read(filepath.Join(t.TempDir(), "none.yml"))
	if err != nil {
		t.Fatalf("a missing file: %v", err)
	}
	if _, ok := missing.Login("http://x"); ok {
		t.Error("a login in a missing file")
	}
}

func TestBasicToken(t *testing.T) {
	user, pass, err := Login{Token: "bWU6cDpzcyB3b3JkIzE="}.Basic()
	if err != nil || user != "me" || pass != "p:ss word#1" {
		t.Errorf("Basic = %q %q %v", user, pass, err)
	}
	for _, bad := range []string{"not base64!", "bm9jb2xvbg=="} {
		if _, _, err := (Login{Gateway: "g", Token: bad}).Basic(); err == nil {
			t.Errorf("token %q: want an error", bad)
		}
	}
}

func TestNewFileIsFaasCliShaped(t *testing.T) {
	got := rewrite(t, "", func(f *File) { f.SetBasic("http://127.0.0.1:8080", "admin", "secret") })
	want := "auths:\n  - gateway: http://127.0.0.1:8080\n    auth: basic\n    token: YWRtaW46c2VjcmV0\n"
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	if got := rewrite(t, "auths: []\n", func(f *File) { f.SetBasic("http://127.0.0.1:8080", "admin", "secret") }); got != want {
		t.Errorf("from an empty list, got:\n%s\nwant:\n%s", got, want)
	}
	if got := rewrite(t, "auths:\n", func(f *File) { f.SetBasic("http://127.0.0.1:8080", "admin", "secret") }); got != want {
		t.Errorf("from an empty auths key, got:\n%s\nwant:\n%s", got, want)
	}
}

// A login changes its own entry and nothing else: comments, key order, flow style, other
// entries and keys this package does not know are all kept.
func TestLoginKeepsEverythingElse(t *testing.T) {
	before := `# faas-cli's logins, and a note of mine
auths:
  - gateway: http://a:1 # the laptop
    auth: oauth2
    token: old
    options:
      client_id: x
    extra: kept
  - {gateway: http://flow:2, auth: basic, token: Zmxvdzp4}
  - gateway: http://b:3
    token: "%quoted"
    auth: basic
later_setting: true # unknown to faasd
`
	got := rewrite(t, before, func(f *File) {
		f.SetBasic("http://a:1", "me", "pw")
		f.SetBasic("http://flow:2", "flow", "y")
		f.SetBasic("http://new:4", "new", "z")
	})
	for _, want := range []string{
		"# faas-cli's logins, and a note of mine\n",
		"- gateway: http://a:1 # the laptop\n    auth: basic\n    token: bWU6cHc=\n    extra: kept\n",
		"- {gateway: 'http://flow:2', auth: basic, token: Zmxvdzp5}\n", // a colon needs quotes in flow style
		"- gateway: http://b:3\n    token: \"%quoted\"\n    auth: basic\n",
		"- gateway: http://new:4\n    auth: basic\n    token: bmV3Ono=\n",
		"later_setting: true # unknown to faasd\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q in:\n%s", want, got)
		}
	}
	if strings.Contains(got, "client_id") {
		t.Errorf("the replaced oauth2 login kept its options:\n%s", got)
	}
	if !(strings.Index(got, "http://a:1") < strings.Index(got, "http://flow:2") && strings.Index(got, "http://b:3") < strings.Index(got, "http://new:4")) {
		t.Errorf("entries reordered:\n%s", got)
	}
}

// Whatever a value holds, YAML reads back the same string: the encoder quotes what a plain
// scalar cannot say (a leading @, %, `, a colon and space, a comment sign, a word YAML reads
// as a boolean, a number or null).
func TestValuesAreQuotedWhereYAMLNeedsIt(t *testing.T) {
	values := []string{"@at", "%percent", "`tick", "a: b", "#hash", "x #y", "true", "no", "null", "~", "1e3", "0x10", "", " lead", "trail ", "multi\nline", "- dash", "[list]", "{map}", "*star", "&amp", "!bang", "|pipe", ">gt", "'single", "\"double"}
	got := rewrite(t, "auths:\n- gateway: http://g\n", func(f *File) {
		e := f.entry("http://g")
		for i, v := range values {
			set(e, "k"+strings.Repeat("x", i), v)
		}
	})
	var back struct {
		Auths []map[string]string `yaml:"auths"`
	}
	if err := yaml.Unmarshal([]byte(got), &back); err != nil {
		t.Fatalf("written file does not parse: %v\n%s", err, got)
	}
	for i, v := range values {
		if b := back.Auths[0]["k"+strings.Repeat("x", i)]; b != v {
			t.Errorf("%q came back as %q", v, b)
		}
	}
	for _, v := range []string{"@at", "%percent"} {
		if !strings.Contains(got, "'"+v+"'") && !strings.Contains(got, `"`+v+`"`) {
			t.Errorf("%s written unquoted:\n%s", v, got)
		}
	}
}

func TestFilesItCannotEditAreRefused(t *testing.T) {
	for _, text := range []string{
		"- just\n- a list\n",
		"auths: {gateway: x}\n",
		"auths: [unclosed\n",
		"auths:\n- gateway: x\n\tauth: basic\n",
	} {
		path := filepath.Join(t.TempDir(), "config.yml")
		os.WriteFile(path, []byte(text), 0o600)
		if _, err := Read(path); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("Read(%q) = %v, want an error naming the file", text, err)
		}
	}
}

func TestWriteMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "of", "config.yml")
	f, _ := Read(path)
	f.SetBasic("http://x:1", "a", "b")
	if err := f.Write(); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{path: 0o600, filepath.Dir(path): 0o700} {
		info, err := os.Stat(p)
		if err != nil || info.Mode().Perm() != want {
			t.Errorf("%s: mode %v (%v), want %v", p, info.Mode().Perm(), err, want)
		}
	}
}
