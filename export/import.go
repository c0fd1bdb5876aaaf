package export

import (
	"bytes"
	"cmp"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/drone/envsubst"
	"gopkg.in/yaml.v3"

	"faasd/config"
)

// Table is one function of an OpenFaaS stack file as a faasd.toml table.
type Table struct {
	Name string
	Text string // "[functions.NAME]" and its keys
}

// ImportResult is what Import makes of a stack file: the tables of the functions faasd
// can run, and a line for each thing it could not carry over or had to guess.
type ImportResult struct {
	Tables []Table
	Notes  []Note
}

// importStack is the part of the OpenFaaS stack schema that a faasd function can hold.
type importStack struct {
	Provider struct {
		Name string `yaml:"name"`
	} `yaml:"provider"`
	Functions map[string]importFunction `yaml:"functions"`
}

type importFunction struct {
	Lang            string            `yaml:"lang"`
	Handler         string            `yaml:"handler"`
	Image           string            `yaml:"image"`
	FProcess        string            `yaml:"fprocess"`
	Environment     map[string]string `yaml:"environment"`
	EnvironmentFile []string          `yaml:"environment_file"`
	Secrets         []string          `yaml:"secrets"`
	Labels          map[string]string `yaml:"labels"`
	Annotations     map[string]string `yaml:"annotations"`
	Limits          map[string]string `yaml:"limits"`
	Requests        map[string]string `yaml:"requests"`
}

// tomlFunction is what an imported function becomes in faasd.toml.
type tomlFunction struct {
	Workdir     string            `toml:"workdir,omitempty"`
	Command     []string          `toml:"command,omitempty"`
	Fprocess    string            `toml:"fprocess,omitempty"`
	Env         map[string]string `toml:"env,inline,omitempty"`
	Labels      map[string]string `toml:"labels,inline,omitempty"`
	Annotations map[string]string `toml:"annotations,inline,omitempty"`
	Secrets     []string          `toml:"secrets,omitempty"`
	Timeout     string            `toml:"timeout,omitempty"`
	Limits      map[string]string `toml:"limits,inline,omitempty"`
	Requests    map[string]string `toml:"requests,inline,omitempty"`
}

// watchdogTimeouts are of-watchdog's limits on one request; faasd's `timeout` bounds a
// request end to end, so it takes the longest of them.
var watchdogTimeouts = []string{"read_timeout", "write_timeout", "exec_timeout"}

// Import reads an OpenFaaS stack file, substituting environment variables through getenv
// as faas-cli does, and turns the functions faasd can run into faasd.toml tables whose
// paths are relative to tomlDir, the folder of the faasd.toml they go into. faasd runs a
// function whose stack entry or handler's Dockerfile names its process (fprocess): in
// streaming mode as a classic function, in http mode as an HTTP workload. A function of a
// language template is not importable: its handler runs inside the template's server.
func Import(stackPath string, getenv func(string) string, tomlDir string, filter string) (*ImportResult, error) {
	data, err := os.ReadFile(stackPath)
	if err != nil {
		return nil, fmt.Errorf("read stack file: %w", err)
	}
	text, err := envsubst.Eval(string(data), getenv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", stackPath, err)
	}
	var st importStack
	if err := yaml.Unmarshal([]byte(text), &st); err != nil {
		return nil, fmt.Errorf("%s: %w", stackPath, err)
	}
	if st.Provider.Name != "openfaas" && st.Provider.Name != "faas" {
		return nil, fmt.Errorf("%s: provider.name %q: an OpenFaaS stack file says openfaas", stackPath, st.Provider.Name)
	}
	stackDir := filepath.Dir(stackPath)
	if abs, err := filepath.Abs(stackDir); err == nil {
		stackDir = abs
	}
	res := &ImportResult{}
	for _, name := range slices.Sorted(maps.Keys(st.Functions)) {
		if ok, err := filepath.Match(filter, name); filter != "" && (err != nil || !ok) {
			if err != nil {
				return nil, fmt.Errorf("--filter %q: %w", filter, err)
			}
			continue
		}
		tbl, notes, err := importFunc(name, st.Functions[name], stackDir, tomlDir, getenv)
		if err != nil {
			return nil, fmt.Errorf("%s: functions.%s: %w", stackPath, name, err)
		}
		res.Notes = append(res.Notes, notes...)
		if tbl != nil {
			res.Tables = append(res.Tables, *tbl)
		}
	}
	return res, nil
}

// importFunc turns one stack function into a table, or into nil and the reason.
func importFunc(name string, fn importFunction, stackDir, tomlDir string, getenv func(string) string) (*Table, []Note, error) {
	var notes []Note
	note := func(guess bool, format string, args ...any) {
		notes = append(notes, Note{Function: name, Guess: guess, Text: fmt.Sprintf(format, args...)})
	}
	if err := config.ValidName(name); err != nil {
		return nil, nil, err
	}
	handler := stackDir
	if fn.Handler != "" {
		handler = filepath.Join(stackDir, fn.Handler)
	}
	env := map[string]string{}
	var image map[string]string // what the handler's Dockerfile sets, when it has one
	if strings.EqualFold(fn.Lang, "dockerfile") {
		var err error
		if image, err = dockerfileEnv(filepath.Join(handler, "Dockerfile")); err != nil {
			return nil, nil, err
		}
	}
	// The image's environment is the program's too, under what the stack file sets; but
	// PATH and HOME are the base image's business, and this machine has its own.
	for k, v := range image {
		if k != "PATH" && k != "HOME" {
			env[k] = v
		}
	}
	maps.Copy(env, fn.Environment)
	// Files listed later win, and files win over the inline environment, as in faas-cli.
	for _, f := range fn.EnvironmentFile {
		fileEnv, err := readEnvironmentFile(filepath.Join(stackDir, f), getenv)
		if err != nil {
			return nil, nil, err
		}
		maps.Copy(env, fileEnv)
	}
	lookup := func(keys ...string) string {
		for _, k := range keys {
			if v := env[k]; v != "" {
				return v
			}
		}
		return ""
	}
	process := cmp.Or(fn.FProcess, lookup("fprocess", "function_process"))
	if process == "" {
		if strings.EqualFold(fn.Lang, "dockerfile") {
			note(false, "not imported: neither stack.yml nor %s/Dockerfile says which process to run (fprocess)", fn.Handler)
		} else {
			note(false, "not imported: lang %s runs its handler inside the template's own server, which faasd has not; `faasd new %s --lang LANG` makes a function to move the handler's code into", fn.Lang, name)
		}
		return nil, notes, nil
	}
	if _, err := os.Stat(handler); err != nil {
		note(true, "its handler folder %s is missing: it runs in the stack file's folder", fn.Handler)
		handler = stackDir
	}
	workdir, err := filepath.Rel(tomlDir, handler)
	if err != nil {
		workdir = handler
	}
	t := tomlFunction{Workdir: filepath.ToSlash(workdir), Labels: fn.Labels, Annotations: fn.Annotations, Secrets: fn.Secrets}
	httpMode := lookup("mode") == "http"
	var longest time.Duration
	for _, k := range watchdogTimeouts {
		if d, ok := watchdogDuration(lookup(k)); ok && d > longest {
			longest = d
		}
	}
	if longest > config.DefaultTimeout {
		t.Timeout = longest.String()
	}
	if httpMode {
		argv := strings.Split(process, " ")
		// An exported image fixes the program's port with `env PORT=... CMD`; faasd
		// gives every replica a port of its own in PORT.
		if argv[0] == "env" {
			i := 1
			for ; i < len(argv) && strings.Contains(argv[i], "="); i++ {
				if k, v, _ := strings.Cut(argv[i], "="); k != "PORT" && k != "http_port" {
					env[k] = v
				}
			}
			argv = argv[i:]
		}
		if len(argv) == 0 {
			return nil, nil, fmt.Errorf("fprocess %q runs no program", process)
		}
		t.Command = argv
		upstream := lookup("upstream_url", "http_upstream_url")
		note(true, "an HTTP workload (of-watchdog's http mode, upstream %s): faasd routes to it once it listens on $PORT and has written /tmp/.lock; add both if it does not", cmp.Or(upstream, "not given"))
	} else {
		t.Fprocess = process
	}
	for k := range env {
		// What of-watchdog read to find the process is in the table's own keys now; its
		// timeouts configure faasd's classic watchdog too, but mean nothing to an HTTP
		// workload, which faasd runs without a watchdog.
		if slices.Contains(watchdogVars, k) || httpMode && slices.Contains(watchdogTimeouts, k) {
			delete(env, k)
		}
	}
	t.Env = env
	prog := strings.Split(process, " ")[0]
	if len(t.Command) > 0 {
		prog = t.Command[0]
	}
	switch {
	case !strings.Contains(prog, "/") && hostProgram(prog) == "":
		note(true, "%s is not installed on this machine: install it, as the image did", prog)
	case strings.Contains(prog, "/") && !filepath.IsAbs(prog):
		if _, err := os.Stat(filepath.Join(handler, prog)); err != nil {
			note(true, "its program %s is not in its folder: build it there (the image's build steps do not carry over)", prog)
		}
	}
	if t.Limits, err = importResources("limits", fn.Limits, note); err != nil {
		return nil, nil, err
	}
	if t.Requests, err = importResources("requests", fn.Requests, note); err != nil {
		return nil, nil, err
	}
	if len(t.Requests) > 0 {
		note(false, "requests kept, as the API shows them: one machine reserves nothing for a function; its limits are what faasd enforces")
	}
	if image != nil {
		note(true, "only its Dockerfile's process and environment carry over, not what the Dockerfile installs: the machine must have it")
	}
	text, err := functionTable(name, t)
	if err != nil {
		return nil, nil, err
	}
	return &Table{Name: name, Text: text}, notes, nil
}

// importResources checks a stack function's limits or requests as faasd.toml will read
// them and keeps the memory and cpu it can hold, as written; anything else (a GPU) is
// noted and left out.
func importResources(key string, r map[string]string, note func(bool, string, ...any)) (map[string]string, error) {
	if _, _, err := config.ParseResources(r["memory"], r["cpu"]); err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	kept := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(r)) {
		switch {
		case r[k] == "":
		case k == "memory" || k == "cpu":
			kept[k] = r[k]
		default:
			note(false, "%s %s = %s not kept: faasd bounds only memory and cpu (and pids, which a stack file cannot say)", key, k, r[k])
		}
	}
	return kept, nil
}

// functionTable writes t as a [functions.NAME] table.
func functionTable(name string, t tomlFunction) (string, error) {
	var b bytes.Buffer
	enc := toml.NewEncoder(&b)
	enc.Indent = ""
	if err := enc.Encode(map[string]map[string]tomlFunction{"functions": {name: t}}); err != nil {
		return "", fmt.Errorf("write functions.%s: %w", name, err)
	}
	// The encoder opens the parent table first; the file it goes into may have it already.
	text, _ := strings.CutPrefix(b.String(), "[functions]\n")
	return text, nil
}

// readEnvironmentFile reads an environment_file: a YAML file with an environment map,
// substituted as the stack file is.
func readEnvironmentFile(path string, getenv func(string) string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("environment_file: %w", err)
	}
	text, err := envsubst.Eval(string(data), getenv)
	if err != nil {
		return nil, fmt.Errorf("environment_file %s: %w", path, err)
	}
	var f struct {
		Environment map[string]string `yaml:"environment"`
	}
	if err := yaml.Unmarshal([]byte(text), &f); err != nil {
		return nil, fmt.Errorf("environment_file %s: %w", path, err)
	}
	return f.Environment, nil
}

// watchdogDuration reads a timeout as of-watchdog does: whole seconds or a Go duration.
func watchdogDuration(v string) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true
	}
	d, err := time.ParseDuration(v)
	return d, err == nil
}
