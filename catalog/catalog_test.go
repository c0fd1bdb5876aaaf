package catalog

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"faasd/api"
	"faasd/config"
	"faasd/statedir"
)

type applied struct{ last map[string]*config.Function }

func (a *applied) Apply(fns map[string]*config.Function) { a.last = fns }

// gateway is the daemon's [gateway] the tests deploy under: an operator who lets idle
// functions sleep after 7 minutes.
var gateway = config.Gateway{UpstreamTimeout: time.Minute, ScaleDefaults: sleepAfter(7 * time.Minute)}

func sleepAfter(d time.Duration) config.ScalePolicy {
	p := config.DefaultScalePolicy
	p.ZeroDuration = d
	return p
}

func open(t *testing.T, dir string) (*Catalog, *applied) {
	t.Helper()
	a := &applied{}
	r, err := Open(statedir.New(dir), gateway, a, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return r, a
}

func TestDeploymentToSpec(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    api.Deployment
		err  string
		ok   func(*config.Function) bool
	}{
		{"classic", api.Deployment{Service: "hash", EnvProcess: "sha512sum"}, "",
			func(f *config.Function) bool {
				return f.Fprocess == "sha512sum" && f.Workdir == "/" && f.Timeout == time.Minute
			}},
		{"http workload", api.Deployment{Service: "web", Command: []string{"./srv"}, Workdir: "/srv", Timeout: "90s"}, "",
			func(f *config.Function) bool {
				return f.Command[0] == "./srv" && f.Timeout == 90*time.Second && f.DrainTimeout == 90*time.Second
			}},
		// faas-cli sends a stack file's environment: { fprocess: ... } in envVars.
		{"fprocess in envVars", api.Deployment{Service: "x", EnvVars: map[string]string{"fprocess": "sha512sum", "A": "1"}}, "",
			func(f *config.Function) bool {
				return f.Fprocess == "sha512sum" && len(f.Env) == 1 && f.Env["A"] == "1"
			}},
		{"envProcess wins over envVars.fprocess", api.Deployment{Service: "x", EnvProcess: "wc", EnvVars: map[string]string{"fprocess": "cat"}}, "",
			func(f *config.Function) bool { return f.Fprocess == "wc" }},
		{"fprocess in envVars and command", api.Deployment{Service: "x", Command: []string{"./srv"}, EnvVars: map[string]string{"fprocess": "cat"}}, "only one", nil},
		{"the gateway's scale defaults", api.Deployment{Service: "x", EnvProcess: "cat", Labels: map[string]string{config.LabelScaleZero: "true"}}, "",
			func(f *config.Function) bool { return f.Scale.Zero && f.Scale.ZeroDuration == 7*time.Minute }},
		{"unknown openfaas label", api.Deployment{Service: "x", EnvProcess: "cat", Labels: map[string]string{"com.openfaas.scale.mni": "2"}}, "did you mean com.openfaas.scale.min", nil},
		{"neither", api.Deployment{Service: "x"}, "send envProcess", nil},
		{"both", api.Deployment{Service: "x", EnvProcess: "cat", Command: []string{"y"}}, "only one", nil},
		{"no name", api.Deployment{EnvProcess: "cat"}, "service: a function name is required", nil},
		{"path in name", api.Deployment{Service: "../x", EnvProcess: "cat"}, "invalid function name", nil},
		{"bad duration", api.Deployment{Service: "x", EnvProcess: "cat", Timeout: "soon"}, "timeout", nil},
		{"bad label", api.Deployment{Service: "x", EnvProcess: "cat", Labels: map[string]string{config.LabelScaleMin: "-3"}}, "com.openfaas.scale.min", nil},
		{"request env", api.Deployment{Service: "x", EnvProcess: "cat", EnvVars: map[string]string{"Http_Method": "GET"}}, "Http_", nil},
		{"limits", api.Deployment{Service: "x", EnvProcess: "cat", Limits: &api.Resources{Memory: "64Mi", CPU: "250m"}, Requests: &api.Resources{CPU: "0.1"}}, "",
			func(f *config.Function) bool {
				return f.Limits.Memory.Bytes == 64<<20 && f.Limits.Memory.String() == "64Mi" && f.Limits.CPU.Millis == 250 &&
					f.Limits.Pids == config.DefaultPids && f.Requests.CPU.Millis == 100
			}},
		{"pids limit", api.Deployment{Service: "x", EnvProcess: "cat", Limits: &api.Resources{Pids: 100}}, "",
			func(f *config.Function) bool { return f.Limits.Pids == 100 && f.Limits.Memory.IsZero() }},
		{"bad memory limit", api.Deployment{Service: "x", EnvProcess: "cat", Limits: &api.Resources{Memory: "lots"}}, `limits: memory: "lots" is not a memory quantity`, nil},
		{"memory without unit", api.Deployment{Service: "x", EnvProcess: "cat", Limits: &api.Resources{Memory: "128"}}, `write a unit, such as "128Mi"`, nil},
		{"bad cpu request", api.Deployment{Service: "x", EnvProcess: "cat", Requests: &api.Resources{CPU: "-1"}}, "requests: cpu:", nil},
		{"few pids", api.Deployment{Service: "x", EnvProcess: "cat", Limits: &api.Resources{Pids: 2}}, "pids: 2 is below 16", nil},
		{"pids request", api.Deployment{Service: "x", EnvProcess: "cat", Requests: &api.Resources{Pids: 20}}, "only a limit", nil},
		{"bad secret name", api.Deployment{Service: "x", EnvProcess: "cat", Secrets: []string{"../../etc/shadow"}}, "invalid secret name", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := specOf(&tc.d, gateway, config.LocalNames(gateway))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrInvalid) {
					t.Fatalf("err = %v, want ErrInvalid containing %q", err, tc.err)
				}
				return
			}
			if err != nil || !tc.ok(f) {
				t.Fatalf("spec %+v, %v", f, err)
			}
		})
	}
}

func TestDeployedFunctionsArePersistedAndReloaded(t *testing.T) {
	dir := t.TempDir()
	r, a := open(t, dir)
	if err := r.Create(api.Deployment{Service: "one", Image: "img:1", EnvProcess: "cat", Labels: map[string]string{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	if a.last["one"] == nil || a.last["one"].Fprocess != "cat" {
		t.Fatalf("applied %v", a.last)
	}
	if err := r.Create(api.Deployment{Service: "one", EnvProcess: "cat"}); !errors.Is(err, ErrExists) {
		t.Fatalf("second create: %v", err)
	}
	if err := r.Update(api.Deployment{Service: "two", EnvProcess: "cat"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update of missing: %v", err)
	}
	first, _ := r.Get("one")
	if err := r.Update(api.Deployment{Service: "one", Image: "img:2", EnvProcess: "wc"}); err != nil {
		t.Fatal(err)
	}
	// A leftover of an interrupted write, and a file that is not a deployment.
	os.WriteFile(filepath.Join(dir, "functions", "three.json.123.tmp"), []byte(`{"deployment":`), 0o600)
	os.WriteFile(filepath.Join(dir, "functions", ".four.json.456.tmp"), []byte(`{"deployment":`), 0o600)
	os.WriteFile(filepath.Join(dir, "functions", "broken.json"), []byte(`{`), 0o600)

	r2, a2 := open(t, dir)
	r2.SetFile("faasd.toml", nil)
	got, ok := r2.Get("one")
	if !ok || got.Deployment.Image != "img:2" || got.Spec.Fprocess != "wc" || !got.CreatedAt.Equal(first.CreatedAt) || got.Source != "api" {
		t.Fatalf("reloaded %+v", got)
	}
	if len(a2.last) != 1 {
		t.Fatalf("applied after reload %v", a2.last)
	}
	for _, tmp := range []string{"three.json.123.tmp", ".four.json.456.tmp"} {
		if _, err := os.Stat(filepath.Join(dir, "functions", tmp)); !os.IsNotExist(err) {
			t.Errorf("temp file %s not cleaned: %v", tmp, err)
		}
	}
	if err := r2.Delete("one"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "functions", "one.json")); !os.IsNotExist(err) {
		t.Errorf("deleted function still on disk: %v", err)
	}
	if err := r2.Delete("one"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
}

func TestFileFunctionsWinNameClashes(t *testing.T) {
	r, a := open(t, t.TempDir())
	if err := r.Create(api.Deployment{Service: "shared", EnvProcess: "cat"}); err != nil {
		t.Fatal(err)
	}
	fileSpec := &config.Function{Name: "shared", Command: []string{"srv"}}
	r.SetFile("/etc/faasd.toml", map[string]*config.Function{"shared": fileSpec})
	if a.last["shared"] != fileSpec {
		t.Fatalf("the file did not win: %+v", a.last["shared"])
	}
	for _, err := range []error{
		r.Update(api.Deployment{Service: "shared", EnvProcess: "cat"}),
		r.Create(api.Deployment{Service: "shared", EnvProcess: "cat"}),
		r.Delete("shared"),
	} {
		if !errors.Is(err, ErrFileManaged) || !strings.Contains(err.Error(), "faasd.toml") {
			t.Errorf("err = %v, want ErrFileManaged naming the file", err)
		}
	}
	if got, _ := r.Get("shared"); got.Source != "file" {
		t.Errorf("source %q", got.Source)
	}
	// The file drops the name: the deployed function comes back.
	r.SetFile("/etc/faasd.toml", nil)
	if a.last["shared"] == nil || a.last["shared"].Fprocess != "cat" {
		t.Fatalf("deployed function not restored: %+v", a.last["shared"])
	}
}

func TestSecretsStore(t *testing.T) {
	r, _ := open(t, t.TempDir())
	s := r.Secrets()
	if err := s.Put("api-key", []byte("v1"), false); err != nil {
		t.Fatal(err)
	}
	if err := s.Put("api-key", []byte("v2"), false); !errors.Is(err, ErrExists) {
		t.Fatalf("create twice: %v", err)
	}
	if err := s.Put("api-key", []byte("v2"), true); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(s.Dir(), "api-key")); string(b) != "v2" {
		t.Fatalf("value %q", b)
	}
	for _, bad := range []string{"", "../x", "a/b", "..", "x..y", "UPPER", strings.Repeat("a", 254)} {
		if err := s.Put(bad, nil, false); !errors.Is(err, ErrInvalid) {
			t.Errorf("name %q: %v", bad, err)
		}
	}
	names, _ := s.Names()
	if strings.Join(names, ",") != "api-key" {
		t.Fatalf("names %v", names)
	}
	if err := s.Delete("api-key"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("api-key"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
}

func TestARefusedReloadIsReportedUntilTheFileLoads(t *testing.T) {
	r, _ := open(t, t.TempDir())
	if _, ok := r.File(); ok {
		t.Error("a file reported before any was set")
	}
	before := time.Now()
	r.SetFile("/srv/faasd.toml", map[string]*config.Function{})
	info, ok := r.File()
	if !ok || info.File != "/srv/faasd.toml" || info.LoadedAt.Before(before) || info.ReloadError != nil {
		t.Fatalf("after SetFile: %+v %v", info, ok)
	}
	r.RefuseFile("/srv/faasd.toml", errors.New("/srv/faasd.toml:2: functions.a.lables: unknown key"))
	refused, _ := r.File()
	if e := refused.ReloadError; e == nil || e.Error != "/srv/faasd.toml:2: functions.a.lables: unknown key" || e.File != "/srv/faasd.toml" || e.Time.Before(before) {
		t.Fatalf("after RefuseFile: %+v", e)
	}
	if refused.LoadedAt != info.LoadedAt {
		t.Errorf("a refused reload changed when the running file was loaded: %v, was %v", refused.LoadedAt, info.LoadedAt)
	}
	r.SetFile("/srv/faasd.toml", map[string]*config.Function{})
	if info, _ := r.File(); info.ReloadError != nil {
		t.Errorf("a good reload left the refusal: %+v", info.ReloadError)
	}
}

func TestSecretsOfTheFileAreMadeOnceAndNeverOverwritten(t *testing.T) {
	r, _ := open(t, t.TempDir())
	s := r.Secrets()
	keyFile := filepath.Join(t.TempDir(), "key")
	os.WriteFile(keyFile, []byte("from-file\n"), 0o600)
	s.Put("kept", []byte("set through the API"), false)
	specs := map[string]*config.Secret{
		"random": {Name: "random", Generate: true},
		"key":    {Name: "key", File: keyFile},
		"kept":   {Name: "kept", Generate: true},
	}
	made, err := s.Provision(specs)
	if err != nil || strings.Join(made, ",") != "key,random" {
		t.Fatalf("made %v, %v; want key and random", made, err)
	}
	random, _ := s.Read("random")
	if !regexp.MustCompile(`^[A-Za-z0-9_-]{32}$`).Match(random) {
		t.Errorf("generated value %q: want 32 characters of [A-Za-z0-9_-]", random)
	}
	if b, _ := s.Read("key"); string(b) != "from-file\n" {
		t.Errorf("key = %q", b)
	}
	if b, _ := s.Read("kept"); string(b) != "set through the API" {
		t.Errorf("a stored secret was overwritten: %q", b)
	}

	// Later starts make nothing and change nothing.
	os.WriteFile(keyFile, []byte("changed"), 0o600)
	if made, err := s.Provision(specs); err != nil || len(made) != 0 {
		t.Fatalf("second start made %v, %v", made, err)
	}
	if again, _ := s.Read("random"); string(again) != string(random) {
		t.Error("the generated value changed on the second start")
	}
	if b, _ := s.Read("key"); string(b) != "from-file\n" {
		t.Errorf("key after its file changed = %q", b)
	}

	if _, err := s.Provision(map[string]*config.Secret{"gone": {Name: "gone", File: "/nonexistent/file"}}); err == nil || !strings.Contains(err.Error(), "secret gone") {
		t.Errorf("a missing file: %v", err)
	}
	if _, err := s.Read("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("read of a missing secret: %v", err)
	}
}
