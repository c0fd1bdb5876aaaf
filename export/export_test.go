package export

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drone/envsubst"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"gopkg.in/yaml.v3"

	"faasd/config"
)

var update = flag.Bool("update", false, "rewrite the golden files of the example stack from the export")

// The example stack, exported, is compared file by file with testdata/golden: what the
// export writes itself (stack.yml, Dockerfiles, services.md, the list of files) as text,
// and the functions' files as the copies of the examples' they must be.
func TestExampleStackGolden(t *testing.T) {
	cfg := exampleStack(t)
	res, out := exportExample(t, cfg)
	golden := filepath.Join("testdata", "golden")
	var notes bytes.Buffer
	for _, n := range res.Notes {
		fmt.Fprintln(&notes, n)
	}
	generated := map[string][]byte{"notes.txt": notes.Bytes()}
	manifest, err := os.ReadFile(filepath.Join(out, manifestName))
	if err != nil {
		t.Fatal(err)
	}
	generated[manifestName] = manifest
	for _, f := range res.Files {
		switch {
		case f.Data != nil:
			generated[f.Path] = f.Data
		case f.Src != "":
			assertSameFile(t, f.Src, filepath.Join(out, f.Path))
		}
	}
	if *update {
		if err := os.RemoveAll(golden); err != nil {
			t.Fatal(err)
		}
		for p, data := range generated {
			full := filepath.Join(golden, p)
			if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(full, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, p := range slices.Sorted(maps.Keys(generated)) {
		want, err := os.ReadFile(filepath.Join(golden, p))
		if err != nil {
			t.Errorf("%s: no golden file (go test ./export -run Golden -update writes them): %v", p, err)
			continue
		}
		if !bytes.Equal(generated[p], want) {
			t.Errorf("%s differs from its golden file (go test ./export -run Golden -update rewrites it):\n%s", p, lineDiff(string(want), string(generated[p])))
		}
	}
	// The written files are what the golden files say, too.
	for _, f := range res.Files {
		if f.Data != nil {
			got, err := os.ReadFile(filepath.Join(out, f.Path))
			if err != nil || !bytes.Equal(got, f.Data) {
				t.Errorf("%s on disk differs from the export (%v)", f.Path, err)
			}
		}
	}
}

// The generated stack file, read as faas-cli reads it (environment substitution, then a
// YAML parser) into the fields of the stack schema, says for every function what
// faasd.toml says.
func TestExampleStackParses(t *testing.T) {
	cfg := exampleStack(t)
	res, err := Export(cfg, Options{Registry: "ghcr.io/acme", Tag: "1.2.3", Gateway: "https://gw.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	st := parseStack(t, res)
	checkStack(t, cfg, res, st, "ghcr.io/acme", "1.2.3", "https://gw.example.com")
	if len(st.Functions) != len(cfg.Functions) {
		t.Errorf("stack.yml has %d functions, faasd.toml %d", len(st.Functions), len(cfg.Functions))
	}
}

// Each Dockerfile, read by Docker's own parser, runs what the function runs: classic
// functions in streaming mode with their fprocess, HTTP workloads in http mode with
// their command on the port upstream_url names.
func TestExampleStackDockerfiles(t *testing.T) {
	cfg := exampleStack(t)
	res, err := Export(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"stronghash": "sha512sum",
		"wordcount":  "wc",
		"hello-go":   "env PORT=8082 http_port=8082 ../../bin/hello-go",
		"frank-says": "env PORT=8082 http_port=8082 ruby main.rb", // /usr/bin/ruby is Debian's
		"guestbook":  "env PORT=8082 http_port=8082 ruby main.rb",
	}
	for name, fprocess := range want {
		df := dockerfile(t, res, name)
		checkDockerfile(t, cfg.Functions[name], df, fprocess)
	}
	// hello-go is built by its own build step, in the folder its command expects.
	df := dockerfile(t, res, "hello-go")
	if run := df.run("build"); !slices.Contains(run, `["go","build","-o","../../bin/hello-go","."]`) {
		t.Errorf("hello-go's build stage runs %q, not its build step", run)
	}
	if df.workdir != "/home/app/examples/hello-go" {
		t.Errorf("hello-go runs in %s, want its folder's place below the stack file's", df.workdir)
	}
	// guestbook's gems come from its Gemfile, with mysql2's library at run time.
	gb := dockerfile(t, res, "guestbook")
	if run := gb.run("gems"); !slices.Contains(run, "bundle install") {
		t.Errorf("guestbook's gems stage runs %q, want bundle install", run)
	}
	if run := strings.Join(gb.run(""), "\n"); !strings.Contains(run, "libmariadb3") {
		t.Errorf("guestbook's image does not install libmariadb3 for mysql2: %q", run)
	}
}

// A stack with what the example lacks: secrets, annotations, hosts, timeouts, values
// with $ and \, a port in env, Python, Node.js, a script, a Go module, a Debian package.
func TestRichStack(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"api/app.py":                  "print('hi')\n",
		"api/requirements.txt":        "flask==3.0.0\n",
		"api/__pycache__/app.pyc":     "x",
		"web/server.js":               "//\n",
		"web/package.json":            "{}\n",
		"web/package-lock.json":       "{}\n",
		"web/node_modules/x/index.js": "//\n",
		"tool/handler.sh":             "#!/usr/bin/env bash\ncat\n",
		"gomod/go.mod":                "module example.com/gomod\n\ngo 1.25.3\n",
		"gomod/main.go":               "package main\n\nfunc main() {}\n",
		"faasd.toml": `
[gateway]
state_dir = ".state"

[functions.api]
workdir = "api"
command = ["/usr/bin/python3", "-u", "app.py"]
env = { PRICE = "$5 \\ each ${HOME}", PORT = "9999", exec_timeout = "2m", LEVEL = "1", mode = "fast" }
secrets = ["db-password", "api-key"]
annotations = { topic = "orders", "com.example/owner" = "team a" }
labels = { "com.openfaas.scale.min" = "2", "com.openfaas.scale.zero" = "false", owner = "team a" }
hosts = ["api.example.com"]
timeout = "90s"

[functions.web]
workdir = "web"
command = ["node", "server.js"]
build = ["npm", "run", "build"]

[functions.tool]
workdir = "tool"
fprocess = "./handler.sh"

[functions.gomod]
workdir = "gomod"
command = ["./server"]
build = ["go", "build", "-o", "server", "."]
user = "root"

[functions.query]
fprocess = "jq ."
`,
	})
	if err := os.Chmod(filepath.Join(dir, "tool/handler.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(filepath.Join(dir, "faasd.toml"))
	if err != nil {
		t.Fatal(err)
	}
	pkgs := packages{"/usr/bin/jq": {"jq", false}, "/usr/bin/bash": {"bash", true}, "/bin/bash": {"bash", true}}
	res, err := Export(cfg, Options{Packages: pkgs})
	if err != nil {
		t.Fatal(err)
	}
	st := parseStack(t, res)
	checkStack(t, cfg, res, st, "", DefaultTag, DefaultGateway)

	api := st.Functions["api"]
	if got := api.Environment["PRICE"]; got != "$5 \\ each ${HOME}" {
		t.Errorf("PRICE reaches faas-cli as %q", got)
	}
	if got := api.Environment["exec_timeout"]; got != "2m" {
		t.Errorf("exec_timeout = %q: the function's own value must win", got)
	}
	if api.Environment["read_timeout"] != "90s" || api.Environment["write_timeout"] != "90s" {
		t.Errorf("read/write timeouts %q, %q: want the function's timeout, 90s", api.Environment["read_timeout"], api.Environment["write_timeout"])
	}
	for _, k := range []string{"PORT", "mode"} {
		if _, ok := api.Environment[k]; ok {
			t.Errorf("environment keeps %s, which would reconfigure of-watchdog", k)
		}
	}
	assertNote(t, res, "api", "env PORT left out")
	assertNote(t, res, "api", "env mode left out")
	assertNote(t, res, "api", "hosts api.example.com")
	assertNote(t, res, "api", `label owner = "team a": Kubernetes refuses it as a label`)

	wantCmds := []string{
		"faas-cli secret create api-key --from-file " + filepath.Join(dir, ".state/secrets/openfaas-fn/api-key"),
		"faas-cli secret create db-password --from-file " + filepath.Join(dir, ".state/secrets/openfaas-fn/db-password"),
	}
	if !slices.Equal(res.SecretCommands, wantCmds) {
		t.Errorf("secret commands:\n%s\nwant:\n%s", strings.Join(res.SecretCommands, "\n"), strings.Join(wantCmds, "\n"))
	}

	checkDockerfile(t, cfg.Functions["api"], dockerfile(t, res, "api"), "env PORT=8082 http_port=8082 python3 -u app.py")
	checkDockerfile(t, cfg.Functions["web"], dockerfile(t, res, "web"), "env PORT=8082 http_port=8082 node server.js")
	checkDockerfile(t, cfg.Functions["tool"], dockerfile(t, res, "tool"), "./handler.sh")
	checkDockerfile(t, cfg.Functions["gomod"], dockerfile(t, res, "gomod"), "env PORT=8082 http_port=8082 ./server")
	checkDockerfile(t, cfg.Functions["query"], dockerfile(t, res, "query"), "jq .")

	if df := dockerfile(t, res, "api"); df.base != pythonImage || !slices.Contains(df.run(""), "pip install --no-cache-dir -r requirements.txt") {
		t.Errorf("api: base %s, runs %q: want %s with its requirements", df.base, df.run(""), pythonImage)
	}
	if df := dockerfile(t, res, "web"); df.base != nodeImage || !slices.Contains(df.run(""), "npm ci --omit=dev") ||
		!slices.Contains(df.run(""), `["npm","run","build"]`) {
		t.Errorf("web: base %s, runs %q: want %s, npm ci and its build step", df.base, df.run(""), nodeImage)
	}
	if df := dockerfile(t, res, "gomod"); df.stages["build"] != goImage("1.25") || slices.Contains(df.run("build"), "go mod init gomod") || df.user != "" {
		t.Errorf("gomod: build stage %s running %q, user %q: want golang 1.25 from its go.mod, its own module, root", df.stages["build"], df.run("build"), df.user)
	}
	if hasFile(res, "query/faasd.toml") {
		t.Error("query's context holds the stack file's folder: `jq .` names no file of its own")
	}
	if df := dockerfile(t, res, "query"); !strings.Contains(strings.Join(df.run(""), " "), "install -y --no-install-recommends jq") {
		t.Errorf("query: runs %q, want jq installed", df.run(""))
	}
	if df := dockerfile(t, res, "tool"); strings.Contains(strings.Join(df.run(""), " "), "apt-get") {
		t.Errorf("tool: runs %q: bash is in every Debian image", df.run(""))
	}

	out := t.TempDir()
	if err := res.Write(out, false); err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(filepath.Join(out, "tool/handler.sh")); err != nil || info.Mode().Perm() != 0o755 {
		t.Errorf("tool/handler.sh: %v, %v: want it copied executable", info, err)
	}
	for _, p := range []string{"web/node_modules", "api/__pycache__", "web/package-lock.json"} {
		_, err := os.Stat(filepath.Join(out, p))
		if want := p == "web/package-lock.json"; (err == nil) != want {
			t.Errorf("%s copied: %v, want %v", p, err == nil, want)
		}
	}
}

// What the export cannot carry over is an error naming the function and the reason,
// and nothing is planned.
func TestExportRefuses(t *testing.T) {
	for _, tc := range []struct {
		name  string
		toml  string
		files map[string]string
		opts  Options
		want  string
	}{
		{"argument with a space", `[functions.a]
command = ["sh", "-c", "echo hi"]`, nil, Options{}, "functions.a: command argument \"echo hi\": of-watchdog splits its fprocess on spaces"},
		{"a Dockerfile of its own", `[functions.a]
workdir = "a"
command = ["./a"]`, map[string]string{"a/a": "x", "a/Dockerfile": "FROM scratch\n"}, Options{}, "functions.a: its folder a has a Dockerfile of its own"},
		{"faas-cli's folder name", `[functions.build]
fprocess = "cat"`, nil, Options{}, "functions.build: faas-cli keeps its own build/ folder"},
		{"bad tag", `[functions.a]
fprocess = "cat"`, nil, Options{Tag: "v1:2"}, `--tag "v1:2": not a Docker image tag`},
		{"registry with a scheme", `[functions.a]
fprocess = "cat"`, nil, Options{Registry: "https://ghcr.io/acme"}, "--registry \"https://ghcr.io/acme\""},
		{"registry with upper case", `[functions.a]
fprocess = "cat"`, nil, Options{Registry: "docker.io/Acme"}, "lower-case image name prefix"},
		{"gateway without a scheme", `[functions.a]
fprocess = "cat"`, nil, Options{Gateway: "gw:8080"}, `--gateway "gw:8080"`},
		{"filter matching nothing", `[functions.a]
fprocess = "cat"`, nil, Options{Filter: "b*"}, `no function matches --filter "b*"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			files := map[string]string{"faasd.toml": tc.toml}
			maps.Copy(files, tc.files)
			writeFiles(t, dir, files)
			cfg, err := config.Load(filepath.Join(dir, "faasd.toml"))
			if err != nil {
				t.Fatal(err)
			}
			res, err := Export(cfg, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Export: %v, %v; want an error containing %q", res, err, tc.want)
			}
		})
	}
}

// An export replaces what an earlier one wrote and nothing else: a directory it did not
// write is refused without --force, faas-cli's own folders and the user's files stay,
// and files of functions no longer exported go.
func TestWriteOwnsOnlyItsFiles(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"a/main.py":  "print(1)\n",
		"b/run.sh":   "#!/bin/sh\ncat\n",
		"faasd.toml": "[functions.a]\nworkdir = \"a\"\ncommand = [\"python3\", \"main.py\"]\n[functions.b]\nworkdir = \"b\"\nfprocess = \"./run.sh\"\n",
	})
	cfg, err := config.Load(filepath.Join(dir, "faasd.toml"))
	if err != nil {
		t.Fatal(err)
	}
	export := func(filter string) *Result {
		t.Helper()
		res, err := Export(cfg, Options{Filter: filter, Packages: packages{}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	out := filepath.Join(t.TempDir(), "deploy")
	writeFiles(t, out, map[string]string{"notes.txt": "mine"})
	if err := export("").Write(out, false); !errors.Is(err, ErrNotOurs) {
		t.Fatalf("writing into a foreign directory: %v, want ErrNotOurs", err)
	}
	if err := export("").Write(out, true); err != nil {
		t.Fatalf("--force: %v", err)
	}
	// faas-cli writes these beside the stack file.
	writeFiles(t, out, map[string]string{"build/a/Dockerfile": "x", "template/dockerfile/template.yml": "language: dockerfile\n"})
	if err := export("a").Write(out, false); err != nil {
		t.Fatalf("writing over its own export: %v", err)
	}
	for p, want := range map[string]bool{
		"notes.txt": true, "build/a/Dockerfile": true, "template/dockerfile/template.yml": true,
		"a/Dockerfile": true, "a/main.py": true, "stack.yml": true, "b/Dockerfile": false, "b/run.sh": false, "b": false,
	} {
		if _, err := os.Lstat(filepath.Join(out, p)); (err == nil) != want {
			t.Errorf("%s exists: %v, want %v", p, err == nil, want)
		}
	}
	// A file of the export's names that the export did not write is the user's.
	writeFiles(t, out, map[string]string{"b/run.sh": "the user's"})
	if err := export("").Write(out, false); !errors.Is(err, ErrNotOurs) || !strings.Contains(err.Error(), "b/run.sh") {
		t.Fatalf("overwriting the user's b/run.sh: %v, want ErrNotOurs naming it", err)
	}
}

// The host's package database knows where its programs come from.
func TestDpkgFindsPackages(t *testing.T) {
	if _, err := os.Stat("/var/lib/dpkg/status"); err != nil {
		t.Skip("not a Debian host: no dpkg database")
	}
	pkg, inBase, err := dpkg{}.Package("/usr/bin/sha512sum")
	if err != nil || pkg != "coreutils" || !inBase {
		t.Errorf("sha512sum: %q, %v, %v; want coreutils, in every image", pkg, inBase, err)
	}
	if _, _, err := (dpkg{}).Package("/usr/local/bin/not-a-program"); !errors.Is(err, errNoPackage) {
		t.Errorf("a program of no package: %v, want errNoPackage", err)
	}
}

// The stack file escapes exactly what faas-cli's substitution eats.
func TestEscapeEnvsubstRoundTrips(t *testing.T) {
	for _, v := range []string{"plain", "$HOME", "${HOME}", "$$", `a\b`, `\\`, `\/`, `\$`, "${", "$", "cost: $5"} {
		got, err := envsubst.Eval(string(escapeEnvsubst([]byte(v))), func(name string) string { return "SUBSTITUTED" })
		if err != nil || got != v {
			t.Errorf("%q → %q after substitution (%v)", v, got, err)
		}
	}
}

func TestDurationString(t *testing.T) {
	for d, want := range map[string]string{"60s": "1m", "90s": "90s", "5m": "5m", "1500ms": "1.5s", "1h": "60m"} {
		dur, err := time.ParseDuration(d)
		if err != nil {
			t.Fatal(err)
		}
		if got := durationString(dur); got != want {
			t.Errorf("%s → %q, want %q", d, got, want)
		}
	}
}

// --- helpers ---

// exportExample exports cfg with the default options into a new directory.
func exportExample(t *testing.T, cfg *config.Config) (*Result, string) {
	t.Helper()
	res, err := Export(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if err := res.Write(out, false); err != nil {
		t.Fatal(err)
	}
	return res, out
}

func exampleStack(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Load(filepath.Join("..", "faasd.toml"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

type packages map[string]struct {
	pkg    string
	inBase bool
}

func (p packages) Package(program string) (string, bool, error) {
	if r, ok := p[program]; ok {
		return r.pkg, r.inBase, nil
	}
	return "", false, errNoPackage
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, text := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func assertSameFile(t *testing.T, src, dst string) {
	t.Helper()
	a, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(dst)
	if err != nil || !bytes.Equal(a, b) {
		t.Errorf("%s is not a copy of %s (%v)", dst, src, err)
	}
}

func assertNote(t *testing.T, res *Result, fn, text string) {
	t.Helper()
	for _, n := range res.Notes {
		if n.Function == fn && strings.Contains(n.Text, text) {
			return
		}
	}
	t.Errorf("no note for %s saying %q; notes:\n%v", fn, text, res.Notes)
}

// stackYAML is the stack schema as faas-cli reads it, field names as its documentation
// gives them; unknown fields are errors.
type stackYAML struct {
	Version  string `yaml:"version"`
	Provider struct {
		Name    string `yaml:"name"`
		Gateway string `yaml:"gateway"`
	} `yaml:"provider"`
	Configuration struct {
		Templates []struct {
			Name string `yaml:"name"`
		} `yaml:"templates"`
	} `yaml:"configuration"`
	Functions map[string]stackFunction `yaml:"functions"`
}

type stackFunction struct {
	Lang        string            `yaml:"lang"`
	Handler     string            `yaml:"handler"`
	Image       string            `yaml:"image"`
	FProcess    string            `yaml:"fprocess"`
	Environment map[string]string `yaml:"environment"`
	Secrets     []string          `yaml:"secrets"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
	Limits      *resources        `yaml:"limits"`
	Requests    *resources        `yaml:"requests"`
}

type resources struct {
	Memory string `yaml:"memory"`
	CPU    string `yaml:"cpu"`
}

func parseStack(t *testing.T, res *Result) stackYAML {
	t.Helper()
	var data []byte
	for _, f := range res.Files {
		if f.Path == "stack.yml" {
			data = f.Data
		}
	}
	// faas-cli substitutes the environment first; the export escaped every $, so no
	// variable may be looked up.
	text, err := envsubst.Eval(string(data), func(name string) string {
		t.Errorf("stack.yml makes faas-cli substitute $%s", name)
		return ""
	})
	if err != nil {
		t.Fatalf("environment substitution: %v", err)
	}
	var st stackYAML
	dec := yaml.NewDecoder(strings.NewReader(text))
	dec.KnownFields(true)
	if err := dec.Decode(&st); err != nil {
		t.Fatalf("stack.yml does not parse as a stack file: %v\n%s", err, text)
	}
	return st
}

func checkStack(t *testing.T, cfg *config.Config, res *Result, st stackYAML, registry, tag, gateway string) {
	t.Helper()
	if st.Version != "1.0" || st.Provider.Name != "openfaas" || st.Provider.Gateway != gateway {
		t.Errorf("version %q, provider %q at %q; want 1.0, openfaas at %s", st.Version, st.Provider.Name, st.Provider.Gateway, gateway)
	}
	if len(st.Configuration.Templates) != 1 || st.Configuration.Templates[0].Name != "dockerfile" {
		t.Errorf("templates %v, want the dockerfile template", st.Configuration.Templates)
	}
	for name, fn := range st.Functions {
		f := cfg.Functions[name]
		if f == nil {
			t.Errorf("stack.yml has %s, which faasd.toml has not", name)
			continue
		}
		image := name + ":" + tag
		if registry != "" {
			image = registry + "/" + image
		}
		if fn.Lang != "dockerfile" || fn.Handler != "./"+name || fn.Image != image {
			t.Errorf("%s: lang %q, handler %q, image %q; want dockerfile, ./%s, %s", name, fn.Lang, fn.Handler, fn.Image, name, image)
		}
		if !hasFile(res, name+"/Dockerfile") {
			t.Errorf("%s: no Dockerfile in its handler folder", name)
		}
		if fn.FProcess != "" {
			t.Errorf("%s: fprocess %q in stack.yml: the image's Dockerfile is the one place for it", name, fn.FProcess)
		}
		for k, v := range f.Env {
			if slices.Contains(watchdogVars, k) {
				continue
			}
			if fn.Environment[k] != v {
				t.Errorf("%s: environment %s = %q, faasd.toml says %q", name, k, fn.Environment[k], v)
			}
		}
		for _, k := range []string{"read_timeout", "write_timeout", "exec_timeout"} {
			want := durationString(f.Timeout)
			if v, ok := f.Env[k]; ok {
				want = v
			}
			if fn.Environment[k] != want {
				t.Errorf("%s: environment %s = %q, want %q from its timeout", name, k, fn.Environment[k], want)
			}
		}
		if !slices.Equal(fn.Secrets, f.Secrets) {
			t.Errorf("%s: secrets %v, faasd.toml says %v", name, fn.Secrets, f.Secrets)
		}
		if !maps.Equal(fn.Labels, f.Labels) || !maps.Equal(fn.Annotations, f.Annotations) {
			t.Errorf("%s: labels %v, annotations %v; faasd.toml says %v, %v", name, fn.Labels, fn.Annotations, f.Labels, f.Annotations)
		}
		for _, r := range []struct {
			key    string
			got    *resources
			memory config.Memory
			cpu    config.CPU
		}{
			{"limits", fn.Limits, f.Limits.Memory, f.Limits.CPU},
			{"requests", fn.Requests, f.Requests.Memory, f.Requests.CPU},
		} {
			want := resources{Memory: r.memory.Quantity(), CPU: r.cpu.Quantity()}
			if r.got == nil && want != (resources{}) || r.got != nil && *r.got != want {
				t.Errorf("%s: %s %+v, want %+v from faasd.toml", name, r.key, r.got, want)
			}
		}
	}
}

func hasFile(res *Result, p string) bool {
	return slices.ContainsFunc(res.Files, func(f File) bool { return f.Path == p })
}

// parsedDockerfile is what Docker's parser makes of a Dockerfile.
type parsedDockerfile struct {
	stages  map[string]string // stage name → base image; "" is the last stage
	base    string            // the last stage's base image
	workdir string            // the last stage's working directory
	user    string            // the last stage's user
	env     map[string]string // the last stage's ENV, as Docker expands it
	cmd     []string
	copies  []string // COPY sources of the last stage, --from=STAGE:PATH for stages
	runs    map[string][]string
}

func (d parsedDockerfile) run(stage string) []string { return d.runs[stage] }

func dockerfile(t *testing.T, res *Result, name string) parsedDockerfile {
	t.Helper()
	var data []byte
	for _, f := range res.Files {
		if f.Path == name+"/Dockerfile" {
			data = f.Data
		}
	}
	ast, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s/Dockerfile: %v", name, err)
	}
	for _, w := range ast.Warnings {
		t.Errorf("%s/Dockerfile: Docker warns: %s", name, w.Short)
	}
	stages, _, err := instructions.Parse(ast.AST, nil)
	if err != nil {
		t.Fatalf("%s/Dockerfile: %v", name, err)
	}
	lex := shell.NewLex(ast.EscapeToken)
	expand := func(word string) (string, error) {
		s, _, err := lex.ProcessWord(word, shell.EnvsFromSlice(nil))
		return s, err
	}
	d := parsedDockerfile{stages: map[string]string{}, env: map[string]string{}, runs: map[string][]string{}}
	for i, st := range stages {
		key := st.Name
		if i == len(stages)-1 {
			key = ""
			d.base = st.BaseName
		}
		d.stages[key] = st.BaseName
		for _, c := range st.Commands {
			switch c := c.(type) {
			case *instructions.RunCommand:
				line := strings.Join(c.CmdLine, " ")
				if !c.PrependShell {
					line = strings.ReplaceAll(execForm(c.CmdLine), " ", "")
				}
				d.runs[key] = append(d.runs[key], line)
			}
			if key != "" {
				continue
			}
			switch c := c.(type) {
			case *instructions.EnvCommand:
				if err := c.Expand(expand); err != nil {
					t.Fatalf("%s/Dockerfile: ENV: %v", name, err)
				}
				for _, kv := range c.Env {
					d.env[kv.Key] = kv.Value
				}
			case *instructions.WorkdirCommand:
				d.workdir = c.Path
			case *instructions.UserCommand:
				d.user = c.User
			case *instructions.CmdCommand:
				d.cmd = c.CmdLine
			case *instructions.CopyCommand:
				for _, src := range c.SourcePaths {
					if c.From != "" {
						src = "--from=" + c.From + ":" + src
					}
					d.copies = append(d.copies, src)
				}
			}
		}
	}
	return d
}

// checkDockerfile checks that the image runs the function: of-watchdog from its pinned
// image, the mode of the function's kind, its command as fprocess, and for an HTTP
// workload the port its command is given equal to the one upstream_url names.
func checkDockerfile(t *testing.T, f *config.Function, d parsedDockerfile, fprocess string) {
	t.Helper()
	if d.stages["watchdog"] != WatchdogImage || !slices.Contains(d.copies, "--from=watchdog:/fwatchdog") || !slices.Equal(d.cmd, []string{"fwatchdog"}) {
		t.Errorf("%s: watchdog stage %q, copies %v, CMD %v: want fwatchdog from %s", f.Name, d.stages["watchdog"], d.copies, d.cmd, WatchdogImage)
	}
	wantUser := "nobody"
	if f.User != "" {
		wantUser = f.User
	}
	if wantUser == "root" {
		wantUser = ""
	}
	if d.user != wantUser {
		t.Errorf("%s: image user %q, want %q as under faasd", f.Name, d.user, wantUser)
	}
	if got := d.env["fprocess"]; got != fprocess {
		t.Errorf("%s: fprocess %q, want %q", f.Name, got, fprocess)
	}
	if f.Fprocess != "" {
		if d.env["mode"] != "streaming" || d.env["upstream_url"] != "" {
			t.Errorf("%s: mode %q, upstream_url %q; a classic function streams", f.Name, d.env["mode"], d.env["upstream_url"])
		}
		return
	}
	if d.env["mode"] != "http" {
		t.Errorf("%s: mode %q, want http", f.Name, d.env["mode"])
	}
	u, err := url.Parse(d.env["upstream_url"])
	if err != nil || u.Scheme != "http" || u.Hostname() != "127.0.0.1" {
		t.Fatalf("%s: upstream_url %q, want http://127.0.0.1:PORT", f.Name, d.env["upstream_url"])
	}
	// The program learns its port from PORT (and http_port), as under faasd.
	fields := strings.Split(d.env["fprocess"], " ")
	if fields[0] != "env" {
		t.Fatalf("%s: fprocess %q does not set the program's port", f.Name, d.env["fprocess"])
	}
	for _, kv := range fields[1:3] {
		if k, v, _ := strings.Cut(kv, "="); (k != "PORT" && k != "http_port") || v != u.Port() {
			t.Errorf("%s: fprocess sets %s, upstream_url names port %s", f.Name, kv, u.Port())
		}
	}
	want := fmt.Sprint(UpstreamPort)
	if u.Port() != want {
		t.Errorf("%s: upstream port %s, want %s", f.Name, u.Port(), want)
	}
}

// lineDiff shows the first lines where two texts differ.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < max(len(w), len(g)) && shown < 8; i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d:\n  want %q\n  got  %q\n", i+1, wl, gl)
			shown++
		}
	}
	return b.String()
}
