package export

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"faasd/config"
	"faasd/stack"
)

// An exported stack imports back: the classic functions with their fprocess, the HTTP
// workloads with their command (less the port the image fixed), with their environment,
// labels and annotations, running in the exported build contexts.
func TestImportRoundTrip(t *testing.T) {
	orig := exampleStack(t)
	_, out := exportExample(t, orig)
	cfg := importInto(t, filepath.Join(out, "stack.yml"), nil)
	if !slices.Equal(cfg.Names(), orig.Names()) {
		t.Fatalf("imported %v, exported %v", cfg.Names(), orig.Names())
	}
	want := map[string][]string{
		"stronghash": {"sha512sum"}, "wordcount": {"wc"},
		"frank-says": {"ruby", "main.rb"}, "guestbook": {"ruby", "main.rb"}, "hello-go": {"../../bin/hello-go"},
	}
	for name, argv := range want {
		f, o := cfg.Functions[name], orig.Functions[name]
		got := f.Command
		if f.Fprocess != "" {
			got = strings.Split(f.Fprocess, " ")
		}
		if !slices.Equal(got, argv) || (f.Fprocess != "") != (o.Fprocess != "") {
			t.Errorf("%s: command %q, fprocess %q; want %q, classic %v", name, f.Command, f.Fprocess, argv, o.Fprocess != "")
		}
		if f.Workdir != filepath.Join(out, name) {
			t.Errorf("%s: workdir %s, want its build context %s", name, f.Workdir, filepath.Join(out, name))
		}
		if !maps.Equal(f.Labels, o.Labels) || !maps.Equal(f.Annotations, o.Annotations) {
			t.Errorf("%s: labels %v, annotations %v; exported %v, %v", name, f.Labels, f.Annotations, o.Labels, o.Annotations)
		}
		wantEnv := maps.Clone(o.Env)
		if o.Fprocess != "" { // the watchdog's timeouts configure faasd's classic watchdog too
			if wantEnv == nil {
				wantEnv = map[string]string{}
			}
			for _, k := range watchdogTimeouts {
				wantEnv[k] = durationString(o.Timeout)
			}
		}
		if !maps.Equal(f.Env, wantEnv) {
			t.Errorf("%s: env %v, want %v", name, f.Env, wantEnv)
		}
		if f.Timeout != o.Timeout {
			t.Errorf("%s: timeout %s, want %s", name, f.Timeout, o.Timeout)
		}
	}
}

// A stack file as OpenFaaS users write them: fprocess in the stack file or in the
// handler's Dockerfile, environment files, variables faas-cli substitutes, a function in
// http mode, and functions faasd cannot run, each with its reason.
func TestImportOpenFaaSStack(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"stack.yml": `version: 1.0
provider:
  name: openfaas
  gateway: http://127.0.0.1:8080
functions:
  hasher:
    lang: dockerfile
    handler: ./hasher
    image: ${REGISTRY:-docker.io/me}/hasher:latest
    environment:
      exec_timeout: 2m
      GREETING: ${GREETING}
    environment_file:
      - env.yml
    secrets:
      - api-key
    labels:
      com.openfaas.scale.min: "2"
    annotations:
      topic: hashes
    limits:
      memory: 64Mi
      cpu: 0.5
      nvidia.com/gpu: "1"
    requests:
      cpu: 100m
  echo:
    lang: dockerfile
    handler: ./echo
    fprocess: cat
  server:
    lang: dockerfile
    handler: ./server
  py:
    lang: python3-http
    handler: ./py
  noproc:
    lang: dockerfile
    handler: ./noproc
`,
		"env.yml":           "environment:\n  LEVEL: debug\n  GREETING: from-file\n",
		"hasher/Dockerfile": "FROM ghcr.io/openfaas/classic-watchdog:0.3.0 AS watchdog\nFROM alpine:3.20\nENV fprocess=\"sha256sum\"\nCMD [\"fwatchdog\"]\n",
		"echo/Dockerfile":   "FROM alpine:3.20\n",
		"server/Dockerfile": "FROM python:3.12-slim\nENV APP=app.py\nENV mode=\"http\" upstream_url=\"http://127.0.0.1:5000\" fprocess=\"python3 $APP\"\n",
		"server/app.py":     "print(1)\n",
		"py/handler.py":     "def handle(req):\n    return req\n",
		"noproc/Dockerfile": "FROM alpine:3.20\nCMD [\"sh\"]\n",
	})
	res, err := Import(filepath.Join(dir, "stack.yml"), func(k string) string {
		return map[string]string{"GREETING": "hello"}[k]
	}, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tbl := range res.Tables {
		names = append(names, tbl.Name)
	}
	if !slices.Equal(names, []string{"echo", "hasher", "server"}) {
		t.Fatalf("imported %v, want echo, hasher and server", names)
	}
	assertNote(t, &Result{Notes: res.Notes}, "py", "not imported: lang python3-http")
	assertNote(t, &Result{Notes: res.Notes}, "noproc", "not imported: neither stack.yml nor ./noproc/Dockerfile")
	assertNote(t, &Result{Notes: res.Notes}, "hasher", "limits nvidia.com/gpu = 1 not kept: faasd bounds only memory and cpu")
	assertNote(t, &Result{Notes: res.Notes}, "hasher", "requests kept, as the API shows them: one machine reserves nothing")
	assertNote(t, &Result{Notes: res.Notes}, "server", "an HTTP workload")

	cfg := importInto(t, filepath.Join(dir, "stack.yml"), func(k string) string { return map[string]string{"GREETING": "hello"}[k] })
	h := cfg.Functions["hasher"]
	if h.Fprocess != "sha256sum" || h.Workdir != filepath.Join(dir, "hasher") {
		t.Errorf("hasher: fprocess %q in %s, want its Dockerfile's sha256sum in its folder", h.Fprocess, h.Workdir)
	}
	wantEnv := map[string]string{"exec_timeout": "2m", "GREETING": "from-file", "LEVEL": "debug"}
	if !maps.Equal(h.Env, wantEnv) {
		t.Errorf("hasher: env %v, want %v (files over inline, substituted)", h.Env, wantEnv)
	}
	if h.Timeout != 2*time.Minute || !slices.Equal(h.Secrets, []string{"api-key"}) ||
		h.Labels["com.openfaas.scale.min"] != "2" || h.Annotations["topic"] != "hashes" || h.Scale.Min != 2 {
		t.Errorf("hasher: timeout %s, secrets %v, labels %v, annotations %v", h.Timeout, h.Secrets, h.Labels, h.Annotations)
	}
	if l, r := h.Limits, h.Requests; l.Memory.Bytes != 64<<20 || l.CPU.Millis != 500 || l.Pids != config.DefaultPids || r.CPU.Millis != 100 || !r.Memory.IsZero() {
		t.Errorf("hasher: limits %+v, requests %+v; want memory 64Mi, cpu 500m, the default pids, and requests cpu 100m", l, r)
	}
	if e := cfg.Functions["echo"]; e.Fprocess != "cat" {
		t.Errorf("echo: fprocess %q, want the stack file's cat", e.Fprocess)
	}
	s := cfg.Functions["server"]
	if !slices.Equal(s.Command, []string{"python3", "app.py"}) || s.Fprocess != "" || s.Env["APP"] != "app.py" {
		t.Errorf("server: command %q, fprocess %q, env %v; want an HTTP workload running python3 app.py", s.Command, s.Fprocess, s.Env)
	}
	for _, k := range []string{"mode", "upstream_url", "fprocess"} {
		if _, ok := s.Env[k]; ok {
			t.Errorf("server: env keeps of-watchdog's %s", k)
		}
	}
}

// Limits and requests go to the cluster and back as the same amounts, however
// faasd.toml wrote them; pids, which a stack file cannot hold, falls back to faasd's
// default, as the export said it would.
func TestImportRoundTripLimits(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"faasd.toml": `
[functions.small]
fprocess = "cat"
limits = { memory = "64Mi", cpu = "0.5", pids = 100 }
requests = { memory = "32Mi", cpu = "100m" }

[functions.big]
fprocess = "wc"
limits = { memory = "1.5G", cpu = 2 }

[functions.free]
fprocess = "sha512sum"
`})
	orig, err := config.Load(filepath.Join(dir, "faasd.toml"))
	if err != nil {
		t.Fatal(err)
	}
	res, out := exportExample(t, orig)
	assertNote(t, res, "small", "limits pids = 100 not exported: OpenFaaS has no field for it")
	cfg := importInto(t, filepath.Join(out, "stack.yml"), nil)
	for _, name := range orig.Names() {
		o, f := orig.Functions[name], cfg.Functions[name]
		if f == nil {
			t.Errorf("%s: not imported", name)
			continue
		}
		want := o.Limits
		want.Pids = config.DefaultPids
		if f.Limits.Memory.Bytes != want.Memory.Bytes || f.Limits.CPU.Millis != want.CPU.Millis || f.Limits.Pids != want.Pids {
			t.Errorf("%s: limits %+v after the round trip, want %+v", name, f.Limits, want)
		}
		if f.Requests.Memory.Bytes != o.Requests.Memory.Bytes || f.Requests.CPU.Millis != o.Requests.CPU.Millis {
			t.Errorf("%s: requests %+v after the round trip, want %+v", name, f.Requests, o.Requests)
		}
	}
}

// A quantity faasd cannot read stops the import with the function and field named;
// nothing is written.
func TestImportRefusesBadQuantities(t *testing.T) {
	for _, tc := range []struct{ resources, want string }{
		{"limits: {memory: lots}", `functions.fn: limits: memory: "lots" is not a memory quantity such as "128Mi" or "1G"`},
		{"limits: {cpu: fast}", `functions.fn: limits: cpu: "fast" is not a cpu quantity such as "500m" or "2"`},
		{"limits: {memory: 128}", `functions.fn: limits: memory: "128" is 128 bytes, below the least a process needs (1Mi)`},
		{"limits: {cpu: -1}", `functions.fn: limits: cpu: "-1": a cpu limit must be positive`},
		{"requests: {memory: 64MB}", `functions.fn: requests: memory: "64MB" is not a memory quantity`},
		{"requests: {cpu: 0m}", `functions.fn: requests: cpu: "0m": a cpu limit must be positive`},
	} {
		dir := t.TempDir()
		writeFiles(t, dir, map[string]string{"stack.yml": "provider: {name: openfaas}\nfunctions:\n  fn:\n    lang: dockerfile\n    fprocess: cat\n    " + tc.resources + "\n"})
		res, err := Import(filepath.Join(dir, "stack.yml"), os.Getenv, dir, "")
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), filepath.Join(dir, "stack.yml")+": ") {
			t.Errorf("%s: Import = %v, %v; want an error naming the file and saying %q", tc.resources, res, err, tc.want)
		}
	}
}

func TestImportRefusesOtherProviders(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"stack.yml": "provider:\n  name: serverless\nfunctions: {}\n"})
	if _, err := Import(filepath.Join(dir, "stack.yml"), os.Getenv, dir, ""); err == nil || !strings.Contains(err.Error(), `provider.name "serverless"`) {
		t.Errorf("Import: %v, want an error naming the provider", err)
	}
}

// importInto imports a stack file into a new faasd.toml beside it, as faasd import does,
// and loads the result.
func importInto(t *testing.T, stackPath string, getenv func(string) string) *config.Config {
	t.Helper()
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	dir := t.TempDir()
	res, err := Import(stackPath, getenv, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "faasd.toml")
	for _, tbl := range res.Tables {
		if err := stack.AddFunction(path, tbl.Name, tbl.Text); err != nil {
			t.Fatalf("%s: %v\n%s", tbl.Name, err, tbl.Text)
		}
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
