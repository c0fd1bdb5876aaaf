package export

import (
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"faasd/config"
)

// plan is what the export of one function becomes: its build context and what its
// Dockerfile and stack file entry say.
type plan struct {
	fn      *config.Function
	classic bool
	det     detection
	argv    []string // the command as the image runs it
	appDir  string   // the function's folder in the image
	ownDir  bool     // the function has a folder of its own, copied whole
	files   []File   // the function's files in its build context (not the Dockerfile)
	has     map[string]bool
	env     map[string]string // the stack file's environment

	guesses  []string // written into the Dockerfile and told as notes
	notes    []Note
	packages []string // Debian packages the image installs for the program

	goInit     string // module name for `go mod init` when the folder has no go.mod
	goTidy     bool   // the program imports modules beyond the standard library
	goImage    string
	gemfile    []string // Gemfile and Gemfile.lock, as present
	gemHeaders []string // Debian packages gems with C extensions compile against
	gemLibs    []string // and load at run time
	pyReqs     bool
	nodePkg    []string // package.json and its lock file, as present
}

func (p *plan) guess(format string, args ...any) {
	text := fmt.Sprintf(format, args...)
	p.guesses = append(p.guesses, text)
	p.notes = append(p.notes, Note{Function: p.fn.Name, Guess: true, Text: text})
}

func (p *plan) note(format string, args ...any) {
	p.notes = append(p.notes, Note{Function: p.fn.Name, Text: fmt.Sprintf(format, args...)})
}

// fprocess is what of-watchdog runs: the command forked per request, or the HTTP
// server started once, with its port fixed.
func (p *plan) fprocess() string {
	cmd := strings.Join(p.argv, " ")
	if p.classic {
		return cmd
	}
	port := fmt.Sprint(UpstreamPort)
	return "env PORT=" + port + " http_port=" + port + " " + cmd
}

func (e *exporter) plan(f *config.Function) (*plan, error) {
	if reservedNames[f.Name] {
		return nil, fmt.Errorf("faas-cli keeps its own %s/ folder beside the stack file, where this function's build context would go: rename the function to export it", f.Name)
	}
	p := &plan{fn: f, classic: f.Fprocess != ""}
	if p.classic {
		// faasd's classic watchdog and of-watchdog both split fprocess on single spaces.
		p.argv = strings.Split(f.Fprocess, " ")
	} else {
		p.argv = slices.Clone(f.Command)
		for _, a := range p.argv {
			if a == "" || strings.ContainsAny(a, " \t\n\r") {
				return nil, fmt.Errorf("command argument %q: %w", a, errArgSpace)
			}
		}
	}
	if err := e.context(p); err != nil {
		return nil, err
	}
	p.det = detect(f.Build, p.argv, f.Workdir, func(name string) bool { return p.has[name] })
	p.guess("a %s image: %s", p.det.runtime, p.det.reason)
	if err := e.runtimeSetup(p); err != nil {
		return nil, err
	}
	p.env = e.environment(p)
	if len(f.Hosts) > 0 {
		p.note("hosts %s: routing a host name to a function is the cluster's ingress's work (an Ingress, or OpenFaaS's FunctionIngress)", strings.Join(f.Hosts, ", "))
	}
	if f.LockFile != config.DefaultLockFile {
		p.note("lock_file %s: of-watchdog does not wait for it; it answers /_/ready with its own /tmp/.lock", f.LockFile)
	}
	if f.Limits.Pids != config.DefaultPids {
		p.note("limits pids = %d not exported: OpenFaaS has no field for it; %s", f.Limits.Pids, pidsElsewhere)
	}
	for _, dep := range f.DependsOn {
		p.note("depends on the service %s, which the cluster must provide (see services.md)", dep)
	}
	return p, nil
}

// context picks the function's files for its build context and its folder in the image.
func (e *exporter) context(p *plan) error {
	f := p.fn
	rel, err := filepath.Rel(e.stackDir(), f.Workdir)
	switch {
	case err != nil || !filepath.IsLocal(rel) && rel != ".":
		p.appDir = imageRoot + "/" + f.Name
		p.guess("its folder %s is outside the stack file's folder: it goes to %s in the image", e.rel(f.Workdir), p.appDir)
	case rel == ".":
		p.appDir = imageRoot
	default:
		p.appDir = path.Join(imageRoot, filepath.ToSlash(rel))
	}
	p.has = map[string]bool{}
	p.ownDir = f.Workdir != e.stackDir()
	if p.ownDir {
		files, err := e.copyTree(f.Workdir)
		if err != nil {
			return err
		}
		for _, file := range files {
			file.Path = f.Name + "/" + file.Path
			p.files = append(p.files, file)
		}
	} else {
		// The function shares the stack file's folder with everything else there: take
		// only the files its commands name, not the whole project.
		var named []string
		for _, a := range slices.Concat(p.argv, f.Build) {
			a = strings.TrimPrefix(a, "./")
			if a == "" || filepath.IsAbs(a) || !filepath.IsLocal(a) || slices.Contains(named, a) {
				continue
			}
			// Files only: a folder named here ("jq .") is the stack file's folder itself,
			// or a part of the project the function does not own.
			if info, err := os.Lstat(filepath.Join(f.Workdir, a)); err != nil || info.IsDir() {
				continue
			}
			files, err := e.copyTree(filepath.Join(f.Workdir, a))
			if err != nil {
				return err
			}
			for _, file := range files {
				file.Path = f.Name + "/" + path.Join(filepath.ToSlash(a), file.Path)
				p.files = append(p.files, file)
			}
			named = append(named, a)
		}
		if len(named) > 0 {
			p.guess("it has no folder of its own (its workdir is the stack file's folder): its context holds only what its commands name (%s); add what else it needs", strings.Join(named, ", "))
		}
	}
	for _, file := range p.files {
		rest := strings.TrimPrefix(file.Path, f.Name+"/")
		if rest == "Dockerfile" {
			return fmt.Errorf("its folder %s has a Dockerfile of its own, which the export would replace: rename it, or build that image yourself", e.rel(f.Workdir))
		}
		if !strings.Contains(rest, "/") {
			p.has[rest] = true
		}
	}
	if prog := p.argv[0]; strings.Contains(prog, "/") && !filepath.IsAbs(prog) {
		inImage := path.Join(p.appDir, prog)
		onHost := filepath.Join(f.Workdir, prog)
		switch {
		case !strings.HasPrefix(inImage, imageRoot+"/"):
			p.guess("its program %s lies outside %s in the image: check that it is there", prog, imageRoot)
		case len(f.Build) == 0 && !p.copied(onHost, f.Workdir):
			p.guess("its program %s is outside its folder and no build step makes it: add it to the image", prog)
		}
	}
	return nil
}

// copied reports whether the file at host path p made it into the build context.
func (p *plan) copied(hostPath, workdir string) bool {
	rel, err := filepath.Rel(workdir, hostPath)
	if err != nil || !filepath.IsLocal(rel) {
		return false
	}
	return slices.ContainsFunc(p.files, func(f File) bool { return f.Path == p.fn.Name+"/"+filepath.ToSlash(rel) })
}

// runtimeSetup fills in what the function's runtime needs: interpreter names of the
// runtime image, Debian packages, Go modules, gems, Python and Node packages.
func (e *exporter) runtimeSetup(p *plan) error {
	f := p.fn
	switch p.det.runtime {
	case runRuby, runPython, runNode:
		if prog := p.argv[0]; filepath.IsAbs(prog) {
			if r, ok := interpreterRuntime(prog); ok && r == p.det.runtime {
				name := filepath.Base(prog)
				if name == "nodejs" {
					name = "node" // Debian's name; the Node.js image has only node
				}
				p.argv[0] = name
				p.guess("its command runs %s, the host's; the image runs %s from PATH", prog, name)
			}
		}
	case runDebian:
		e.debianPackages(p)
	}
	switch p.det.runtime {
	case runGo:
		return e.goSetup(p)
	case runRuby:
		for _, name := range []string{"Gemfile", "Gemfile.lock"} {
			if p.has[name] {
				p.gemfile = append(p.gemfile, name)
			}
		}
		switch {
		case len(p.gemfile) == 0:
			p.guess("no Gemfile: it needs no gems beyond Ruby's own")
		case !p.has["Gemfile.lock"]:
			p.guess("no Gemfile.lock: bundle installs the newest gems its Gemfile allows, maybe newer than the ones that ran here (`bundle lock` pins them)")
		}
		if p.has["Gemfile"] {
			headers, libs, from := gemPackages(gems(filepath.Join(f.Workdir, "Gemfile")))
			if len(libs) > 0 {
				p.gemHeaders, p.gemLibs = headers, libs
				p.guess("gems with C extensions (%s) build against %s and load %s at run time",
					strings.Join(from, ", "), strings.Join(headers, ", "), strings.Join(libs, ", "))
			}
		}
	case runPython:
		p.pyReqs = p.has["requirements.txt"]
		if !p.pyReqs {
			p.guess("no requirements.txt: it needs nothing beyond Python's standard library (packages installed on the host with apt or pip are not in the image)")
		}
	case runNode:
		if p.has["package.json"] {
			p.nodePkg = []string{"package.json"}
			if p.has["package-lock.json"] {
				p.nodePkg = append(p.nodePkg, "package-lock.json")
			}
		} else {
			p.guess("no package.json: it needs nothing beyond Node.js's own modules")
		}
	}
	if len(f.Build) > 0 && p.det.runtime != runGo {
		p.guess("its build step (%s) runs in the image, after its files are copied", strings.Join(f.Build, " "))
	}
	return nil
}

// debianPackages finds the Debian package of the program (or of the interpreter its
// script names) when the Debian image may lack it.
func (e *exporter) debianPackages(p *plan) {
	prog := hostProgram(p.det.interpreter)
	if prog == "" {
		return // the function's own file
	}
	pkg, inBase, err := e.opts.Packages.Package(prog)
	switch {
	case errors.Is(err, errNoPackage):
		p.guess("%s is on this host but not from a Debian package: add it to the image", prog)
	case err != nil:
		p.guess("could not tell which Debian package installs %s (%v): add it to the image", prog, err)
	case !inBase:
		p.packages = append(p.packages, pkg)
		p.guess("%s comes from the Debian package %s, installed in the image", prog, pkg)
	default:
		p.guess("%s comes from the Debian package %s, which every Debian image has", prog, pkg)
	}
}

// goSetup decides how the image builds a Go program: with the folder's own go.mod, or a
// module of its own when the folder is part of a larger one.
func (e *exporter) goSetup(p *plan) error {
	f := p.fn
	modPath, module, version := goModule(f.Workdir)
	p.goImage = goImage(goMinor(version))
	if version == "" {
		p.guess("no go.mod says which Go: built with %s", p.goImage)
	}
	if modPath == filepath.Join(f.Workdir, "go.mod") {
		return nil
	}
	p.goInit = f.Name
	imports, err := goImports(f.Workdir)
	if err != nil {
		return err
	}
	var local, external []string
	for _, imp := range imports {
		first, _, _ := strings.Cut(imp, "/")
		switch {
		case module != "" && (imp == module || strings.HasPrefix(imp, module+"/")):
			local = append(local, imp)
		case strings.Contains(first, "."):
			external = append(external, imp)
		}
	}
	where := "has no go.mod"
	if modPath != "" {
		where = fmt.Sprintf("belongs to the module %s (%s), which the build context lacks", module, e.rel(modPath))
	}
	switch {
	case len(local) > 0:
		p.guess("its folder %s and imports %s from it: it will not build from its folder alone; give the function a go.mod of its own", where, strings.Join(local, ", "))
	case len(external) > 0:
		p.goTidy = true
		p.guess("its folder %s: the image makes it a module of its own (go mod init %s; go mod tidy fetches %s)", where, p.goInit, strings.Join(external, ", "))
	default:
		p.guess("its folder %s: the image makes it a module of its own (go mod init %s); it imports only the standard library", where, p.goInit)
	}
	return nil
}

// goImports lists the packages the non-test Go files of dir import.
func goImports(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	var out []string
	fset := token.NewFileSet()
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.ImportsOnly)
		if err != nil {
			return nil, fmt.Errorf("read the imports of %s: %w", filepath.Join(dir, name), err)
		}
		for _, imp := range file.Imports {
			if p := strings.Trim(imp.Path.Value, "\"`"); !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}
