// Package templates holds the function templates of `faasd new`, one folder per language,
// and creates a function from one: its folder beside the stack file, and its
// [functions.NAME] table at the end of the file.
package templates

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/template"

	"faasd/config"
	"faasd/stack"
)

// files holds the templates, one folder per language. Files ending in .tmpl are rendered
// with the function's name ({{.Name}}) and lose the suffix; Go sources carry it anyway so
// that the go tool never mistakes them for part of this module.
//
//go:embed all:bash all:go all:node all:python3 all:ruby
var files embed.FS

// ErrUnknown is the error of a language without a template.
var ErrUnknown = errors.New("no template")

// Template is one language's template.
type Template struct {
	Lang        string
	Description string // what `faasd new --list` says of it
	table       string // the [functions.NAME] table added to the stack file, rendered like the files
}

// List returns the templates in the order `faasd new --list` shows them.
func List() []Template {
	return []Template{
		{Lang: "go", Description: "Go HTTP server, standard library only; built by `go build`", table: `[functions.{{.Name}}]
workdir = "{{.Name}}"
command = ["./handler"]
build = ["go", "build", "-o", "handler", "."]
`},
		{Lang: "python3", Description: "Python 3 HTTP server, standard library only, run by Debian's /usr/bin/python3", table: `[functions.{{.Name}}]
workdir = "{{.Name}}"
command = ["/usr/bin/python3", "-u", "index.py"]
`},
		{Lang: "node", Description: "Node.js HTTP server, standard library only", table: `[functions.{{.Name}}]
workdir = "{{.Name}}"
command = ["node", "index.js"]
env = { NODE_ENV = "production" }
`},
		{Lang: "ruby", Description: "Sinatra on Puma, as in the OpenFaaS tutorial (Debian's ruby-sinatra and puma)", table: `[functions.{{.Name}}]
workdir = "{{.Name}}"
command = ["ruby", "main.rb"]
env = { RACK_ENV = "production" }
`},
		{Lang: "bash", Description: "classic mode: a script forked once per request, body on stdin, answer on stdout", table: `[functions.{{.Name}}]
workdir = "{{.Name}}"
fprocess = "./handler.sh"
`},
	}
}

// Find returns the template of a language.
func Find(lang string) (Template, error) {
	var names []string
	for _, t := range List() {
		if t.Lang == lang {
			return t, nil
		}
		names = append(names, t.Lang)
	}
	return Template{}, fmt.Errorf("%w for --lang %q: choose one of %s", ErrUnknown, lang, strings.Join(names, ", "))
}

// render fills a template's text in with the function's name.
func render(name, text string) ([]byte, error) {
	t, err := template.New(name).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, struct{ Name string }{name}); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// templateOutput is one file a template produces.
type templateOutput struct {
	path string // relative, slash-separated
	data []byte
	mode os.FileMode
}

// renderTemplate produces the files of a function created from lang's template.
func renderTemplate(lang, name string) ([]templateOutput, error) {
	root := lang
	var out []templateOutput
	err := fs.WalkDir(files, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(p, root+"/")
		if r, ok := strings.CutSuffix(rel, ".tmpl"); ok {
			rel = r
			if data, err = render(name, string(data)); err != nil {
				return fmt.Errorf("template %s: %w", p, err)
			}
		}
		// Replicas run as an unprivileged user: everything readable, scripts executable.
		mode := os.FileMode(0o644)
		if strings.HasSuffix(rel, ".sh") {
			mode = 0o755
		}
		out = append(out, templateOutput{path: rel, data: data, mode: mode})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// writeTemplate creates dir (which must not exist) with a template's files.
func writeTemplate(dir string, files []templateOutput) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	// Mkdir honours the umask; the function's user must be able to enter the folder.
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	for _, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(f.path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.data, f.mode); err != nil {
			return err
		}
		if err := os.Chmod(p, f.mode); err != nil {
			return err
		}
	}
	return nil
}

// Create makes function name from template t: a folder of that name beside the stack file
// at stackPath (which must not exist yet), and a [functions.NAME] table at the end of the
// stack file, created if missing. It returns the folder. A failure leaves neither.
func Create(stackPath, name string, t Template) (string, error) {
	if err := config.ValidName(name); err != nil {
		return "", err
	}
	stackPath, err := filepath.Abs(stackPath)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(filepath.Dir(stackPath), name)
	if _, err := os.Lstat(dir); err == nil {
		return "", fmt.Errorf("new %s: %s already exists", name, dir)
	}
	// Check the stack file before writing anything, so that a failure leaves no folder.
	if _, err := os.Stat(stackPath); err == nil {
		cfg, err := config.Load(stackPath)
		if err != nil {
			return "", err
		}
		if _, ok := cfg.Functions[name]; ok {
			return "", fmt.Errorf("new %s: %s already has functions.%s", name, stackPath, name)
		}
	}
	files, err := renderTemplate(t.Lang, name)
	if err != nil {
		return "", err
	}
	table, err := render(name, t.table)
	if err != nil {
		return "", err
	}
	if err := writeTemplate(dir, files); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("new %s: %w", name, err)
	}
	if err := stack.AddFunction(stackPath, name, "# faasd new "+name+" --lang "+t.Lang+"\n"+string(table)); err != nil {
		os.RemoveAll(dir)
		if errors.Is(err, stack.ErrExists) {
			return "", fmt.Errorf("new %s: %w", name, err)
		}
		return "", err
	}
	return dir, nil
}
