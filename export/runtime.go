package export

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The images a build starts from, pinned by tag. Every one is Debian 12 (bookworm), the
// release faasd's own packages target, so a program that ran here finds the same C
// library and the same package names there.
const (
	WatchdogImage = "ghcr.io/openfaas/of-watchdog:0.11.5" // fwatchdog, copied into every image
	debianImage   = "debian:bookworm-slim"
	rubyImage     = "ruby:3.3-slim-bookworm"
	rubyGemsImage = "ruby:3.3-bookworm" // compilers and headers for gems with C extensions
	pythonImage   = "python:3.12-slim-bookworm"
	nodeImage     = "node:22-bookworm-slim"
	goVersion     = "1.26" // when no go.mod says which
)

func goImage(version string) string { return "golang:" + version + "-bookworm" }

// runtime is the kind of program a function runs, which decides its base image.
type runtime int

const (
	runDebian runtime = iota // anything else: the command as is, on Debian
	runGo
	runRuby
	runPython
	runNode
)

// interpreters are the programs whose name says the runtime; the runtime images have
// them on PATH, though under /usr/local/bin, not where Debian puts them.
var interpreters = map[runtime][]string{
	runRuby:   {"ruby", "bundle", "rackup", "puma"},
	runPython: {"python", "python3", "gunicorn", "uvicorn", "flask"},
	runNode:   {"node", "nodejs", "npm", "npx"},
}

func (r runtime) String() string {
	return [...]string{"Debian", "Go", "Ruby", "Python", "Node.js"}[r]
}

// interpreterRuntime tells the runtime a program's name belongs to.
func interpreterRuntime(prog string) (runtime, bool) {
	base := filepath.Base(prog)
	for r, names := range interpreters {
		for _, n := range names {
			// python3.11, ruby3.1: Debian's versioned names.
			if base == n || strings.HasPrefix(base, n) && isVersion(base[len(n):]) {
				return r, true
			}
		}
	}
	return runDebian, false
}

var versionSuffix = lazyRegexp(`^[0-9]+(\.[0-9]+)*$`)

func isVersion(s string) bool { return versionSuffix().MatchString(s) }

// detection is what a function's command and files say about its runtime, and why.
type detection struct {
	runtime runtime
	reason  string
	// interpreter is the program that runs the function's code: the command's program,
	// or the interpreter a script of the function names in its first line.
	interpreter string
}

// detect guesses the runtime of a function from its build step, its program (or the
// interpreter its script names) and the files in its folder.
func detect(build, argv []string, workdir string, has func(string) bool) detection {
	prog := argv[0]
	if len(build) > 0 && filepath.Base(build[0]) == "go" {
		return detection{runGo, "its build step runs `go`", prog}
	}
	if r, ok := interpreterRuntime(prog); ok {
		return detection{r, "its command runs `" + filepath.Base(prog) + "`", prog}
	}
	if strings.Contains(prog, "/") && !filepath.IsAbs(prog) {
		if interp := shebang(filepath.Join(workdir, prog)); interp != "" {
			if r, ok := interpreterRuntime(interp); ok {
				return detection{r, "its program " + prog + " is a script for `" + filepath.Base(interp) + "`", interp}
			}
			return detection{runDebian, "its program " + prog + " is a script for " + interp, interp}
		}
	}
	switch {
	case filepath.Base(prog) == "go":
		return detection{runGo, "its command runs `go`", prog}
	case has("go.mod") && len(build) > 0:
		return detection{runGo, "its folder has a go.mod and a build step", prog}
	case has("Gemfile"):
		return detection{runRuby, "its folder has a Gemfile", prog}
	case has("requirements.txt"):
		return detection{runPython, "its folder has a requirements.txt", prog}
	case has("package.json"):
		return detection{runNode, "its folder has a package.json", prog}
	}
	return detection{runDebian, "its command is none of Go, Ruby, Python or Node.js", prog}
}

// goModule finds the go.mod that governs dir: its path, its module path and its go
// version; "" when there is none up to the root.
func goModule(dir string) (path, module, version string) {
	for d := dir; ; d = filepath.Dir(d) {
		p := filepath.Join(d, "go.mod")
		if data, err := os.ReadFile(p); err == nil {
			for _, line := range strings.Split(string(data), "\n") {
				fields := strings.Fields(line)
				switch {
				case len(fields) >= 2 && fields[0] == "module":
					module = strings.Trim(fields[1], `"`)
				case len(fields) >= 2 && fields[0] == "go":
					version = fields[1]
				}
			}
			return p, module, version
		}
		if filepath.Dir(d) == d {
			return "", "", ""
		}
	}
}

// goMinor turns a go directive ("1.26.0") into the image's tag ("1.26").
func goMinor(v string) string {
	parts := strings.Split(v, ".")
	if len(parts) < 2 || !isVersion(v) {
		return goVersion
	}
	return parts[0] + "." + parts[1]
}

var gemLine = lazyRegexp(`^\s*gem\s+['"]([^'"]+)['"]`)

// gems lists the gems a Gemfile names.
func gems(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := gemLine().FindStringSubmatch(sc.Text()); m != nil {
			out = append(out, m[1])
		}
	}
	return out
}

// gemLibraries are the Debian packages of gems with C extensions: the headers they
// compile against in the full Ruby image, and the libraries they load in the slim one.
var gemLibraries = map[string][2]string{
	"mysql2":  {"libmariadb-dev", "libmariadb3"},
	"pg":      {"libpq-dev", "libpq5"},
	"sqlite3": {"libsqlite3-dev", "libsqlite3-0"},
}

func gemPackages(names []string) (headers, libs, from []string) {
	for _, g := range names {
		if p, ok := gemLibraries[g]; ok && !slices.Contains(from, g) {
			headers = append(headers, p[0])
			libs = append(libs, p[1])
			from = append(from, g)
		}
	}
	return headers, libs, from
}
