// Package export turns the functions of a faasd.toml into what an OpenFaaS cluster
// builds and runs: an OpenFaaS stack file (stack.yml) and one Docker build context per
// function, whose image runs the function's own program behind of-watchdog. Import goes
// the other way, from an OpenFaaS stack file to faasd.toml tables. The package reads
// config specs and the functions' folders and writes files; it never talks to a daemon
// or a cluster.
package export

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"faasd/config"
	"faasd/stack"
	"faasd/statedir"
)

// Defaults of the options.
const (
	DefaultGateway = "http://127.0.0.1:8080" // faas-cli's, e.g. through kubectl port-forward
	DefaultTag     = "latest"
)

// UpstreamPort is the port an HTTP workload listens on inside its image, behind
// of-watchdog on 8080. It is fixed in the image, not left to the orchestrator: Knative
// sets PORT to the container's port, which is the watchdog's.
const UpstreamPort = 8082

// imageRoot is where a function's files live in its image. A function's folder keeps its
// place relative to the stack file below it, so that commands reaching out of the folder
// (hello-go's ../../bin/hello-go) still find what they name.
const imageRoot = "/home/app"

// Options steer an export.
type Options struct {
	Filter   string // shell pattern of the function names to export; empty: all
	Registry string // image name prefix, "ghcr.io/acme" → ghcr.io/acme/NAME:TAG
	Tag      string // image tag; default DefaultTag
	Gateway  string // provider.gateway of the stack file; default DefaultGateway
	// Packages finds the Debian package of a program the image must install; nil asks
	// the host's dpkg.
	Packages PackageFinder
	// Skip lists directories never copied into a build context (the output directory,
	// when it lies inside a function's folder); absolute.
	Skip []string
}

// Result is an export before it is written: every file, and what to tell the user.
type Result struct {
	Files []File
	// Notes are one line each: the guesses made and the work left to the user.
	Notes []Note
	// SecretCommands create the secrets the functions need, reading each value from the
	// state directory, where it stays until the user runs the command.
	SecretCommands []string
}

// File is one file of the output.
type File struct {
	Path string      // relative to the output directory, with slashes
	Data []byte      // generated content
	Src  string      // or: the absolute path of a function's file to copy
	Link string      // or: the target of a symbolic link
	Mode fs.FileMode // permission bits
}

// Note is one line for the user about one function (or the whole stack, when Function
// is empty).
type Note struct {
	Function string
	Guess    bool // a guess the user should check, also written into the Dockerfile
	Text     string
}

func (n Note) String() string {
	var b strings.Builder
	if n.Function != "" {
		b.WriteString(n.Function + ": ")
	}
	if n.Guess {
		b.WriteString("guess: ")
	}
	b.WriteString(n.Text)
	return b.String()
}

// reservedNames are folder names faas-cli uses beside the stack file for itself.
var reservedNames = map[string]bool{"build": true, "template": true}

// lazyRegexp compiles a pattern the first time it is used: every start of the faasd
// binary, a classic replica's watchdog included, would otherwise pay for compiling the
// patterns of a command it does not run.
func lazyRegexp(pattern string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(pattern) })
}

var imageTag = lazyRegexp(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// Export plans the export of cfg's functions; nothing is written.
func Export(cfg *config.Config, opts Options) (*Result, error) {
	opts, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	fns, err := stack.Select(cfg, opts.Filter)
	if err != nil {
		return nil, err
	}
	e := &exporter{cfg: cfg, opts: opts, res: &Result{}}
	var plans []*plan
	for _, f := range fns {
		p, err := e.plan(f)
		if err != nil {
			return nil, fmt.Errorf("%s: functions.%s: %w", cfg.Path, f.Name, err)
		}
		plans = append(plans, p)
	}
	stackYML, err := e.stackFile(plans)
	if err != nil {
		return nil, err
	}
	e.res.Files = append(e.res.Files, File{Path: "stack.yml", Data: stackYML, Mode: 0o644})
	for _, p := range plans {
		e.res.Files = append(e.res.Files, File{Path: p.fn.Name + "/Dockerfile", Data: p.dockerfile(), Mode: 0o644})
		e.res.Files = append(e.res.Files, p.files...)
		e.res.Notes = append(e.res.Notes, p.notes...)
	}
	if md := e.servicesFile(plans); md != nil {
		e.res.Files = append(e.res.Files, File{Path: "services.md", Data: md, Mode: 0o644})
	}
	e.secrets(plans)
	return e.res, nil
}

func (o Options) resolve() (Options, error) {
	if o.Tag == "" {
		o.Tag = DefaultTag
	}
	if !imageTag().MatchString(o.Tag) {
		return o, fmt.Errorf("--tag %q: not a Docker image tag (letters, digits, '_', '.' and '-', at most 128)", o.Tag)
	}
	o.Registry = strings.TrimSuffix(o.Registry, "/")
	if _, path, _ := strings.Cut(o.Registry, "/"); strings.Contains(o.Registry, "://") ||
		strings.ContainsAny(o.Registry, " \t\n@") || strings.Contains(path, ":") || strings.ToLower(o.Registry) != o.Registry {
		return o, fmt.Errorf("--registry %q: want a lower-case image name prefix such as ghcr.io/acme, docker.io/user or localhost:5000, without a scheme or a tag", o.Registry)
	}
	if o.Gateway == "" {
		o.Gateway = DefaultGateway
	}
	if !strings.HasPrefix(o.Gateway, "http://") && !strings.HasPrefix(o.Gateway, "https://") {
		return o, fmt.Errorf("--gateway %q: want a URL such as %s", o.Gateway, DefaultGateway)
	}
	if o.Packages == nil {
		o.Packages = dpkg{}
	}
	return o, nil
}

type exporter struct {
	cfg  *config.Config
	opts Options
	res  *Result
}

func (e *exporter) note(fn string, format string, args ...any) {
	e.res.Notes = append(e.res.Notes, Note{Function: fn, Text: fmt.Sprintf(format, args...)})
}

func (e *exporter) image(name string) string {
	if e.opts.Registry == "" {
		return name + ":" + e.opts.Tag
	}
	return e.opts.Registry + "/" + name + ":" + e.opts.Tag
}

// stackDir is the folder of the stack file, which relative paths start from.
func (e *exporter) stackDir() string { return filepath.Dir(e.cfg.Path) }

// rel names a path of this machine as the output says it: relative to the stack file's
// folder when it lies below it, so that the output does not depend on where the project
// is checked out.
func (e *exporter) rel(p string) string {
	if r, err := filepath.Rel(e.stackDir(), p); err == nil && filepath.IsLocal(r) {
		return r
	}
	return p
}

// watchdogVars are the environment variables of-watchdog reads to know what to run and
// where: a function's own variable of one of these names would reconfigure it.
var watchdogVars = []string{"mode", "fprocess", "function_process", "upstream_url", "http_upstream_url", "port", "PORT", "http_port"}

// environment is the function's env for the stack file, with the watchdog's timeouts.
func (e *exporter) environment(p *plan) map[string]string {
	f := p.fn
	env := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(f.Env)) {
		if slices.Contains(watchdogVars, k) {
			if k == "PORT" || k == "http_port" {
				p.note("env %s left out: faasd chose the port itself, and in the image the program listens on %d", k, UpstreamPort)
			} else {
				p.note("env %s left out: of-watchdog reads that name for itself; rename the variable to pass it to the program", k)
			}
			continue
		}
		env[k] = f.Env[k]
		if looksSecret(k) {
			p.note("env %s looks like a secret: OpenFaaS secrets (`secrets = [...]` in faasd.toml) keep it out of the stack file", k)
		}
	}
	// faasd bounds one request end to end with `timeout`; of-watchdog splits that into
	// reading the request, running the function and writing the answer. A value the
	// function sets itself wins: it was meant for a watchdog.
	t := durationString(f.Timeout)
	for _, k := range []string{"read_timeout", "write_timeout", "exec_timeout"} {
		if _, ok := env[k]; !ok {
			env[k] = t
		}
	}
	return env
}

func looksSecret(key string) bool {
	k := strings.ToUpper(key)
	for _, w := range []string{"PASSWORD", "PASSWD", "SECRET", "TOKEN", "API_KEY", "PRIVATE_KEY"} {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// durationString writes a duration as of-watchdog and humans read it: "60s", "5m".
func durationString(d time.Duration) string {
	switch {
	case d%time.Second != 0:
		return d.String()
	case d >= time.Minute && d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return fmt.Sprintf("%ds", d/time.Second)
}

// secrets lists the commands that create the functions' secrets in the cluster.
func (e *exporter) secrets(plans []*plan) {
	names := map[string]bool{}
	for _, p := range plans {
		for _, s := range p.fn.Secrets {
			names[s] = true
		}
	}
	dir := statedir.New(e.cfg.Gateway.StateDir).Secrets()
	for _, s := range slices.Sorted(maps.Keys(names)) {
		e.res.SecretCommands = append(e.res.SecretCommands, "faas-cli secret create "+s+" --from-file "+shellQuote(filepath.Join(dir, s)))
	}
}

// shellQuote quotes a path for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+=:,@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// errArgSpace is a command that of-watchdog could not run as written.
var errArgSpace = errors.New("of-watchdog splits its fprocess on spaces, so no argument may contain one or be empty: move the command into a script in the function's folder")
