package main

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"text/template"
)

// templateFiles holds the function templates, one folder per language. Files ending in
// .tmpl are rendered with the function's name ({{.Name}}) and lose the suffix; Go sources
// carry it anyway so that the go tool never mistakes them for part of this module.
//
//go:embed all:templates
var templateFiles embed.FS

// langTemplate describes one template: what `faasd new --list` says of it and the
// [functions.NAME] table `faasd new` adds to the stack file.
type langTemplate struct {
	lang        string
	description string
	table       string // rendered like the files
}

// langTemplates returns the templates in the order `faasd new --list` shows them.
func langTemplates() []langTemplate {
	return []langTemplate{
		{"go", "Go HTTP server, standard library only; built by `go build`", `[functions.{{.Name}}]
workdir = "{{.Name}}"
command = ["./handler"]
build = ["go", "build", "-o", "handler", "."]
`},
		{"python3", "Python 3 HTTP server, standard library only, run by Debian's /usr/bin/python3", `[functions.{{.Name}}]
workdir = "{{.Name}}"
command = ["/usr/bin/python3", "-u", "index.py"]
`},
		{"node", "Node.js HTTP server, standard library only", `[functions.{{.Name}}]
workdir = "{{.Name}}"
command = ["node", "index.js"]
env = { NODE_ENV = "production" }
`},
		{"ruby", "Sinatra on Puma, as in the OpenFaaS tutorial (Debian's ruby-sinatra and puma)", `[functions.{{.Name}}]
workdir = "{{.Name}}"
command = ["ruby", "main.rb"]
env = { RACK_ENV = "production" }
`},
		{"bash", "classic mode: a script forked once per request, body on stdin, answer on stdout", `[functions.{{.Name}}]
workdir = "{{.Name}}"
fprocess = "./handler.sh"
`},
	}
}

func findTemplate(lang string) (langTemplate, error) {
	var names []string
	for _, t := range langTemplates() {
		if t.lang == lang {
			return t, nil
		}
		names = append(names, t.lang)
	}
	return langTemplate{}, fmt.Errorf("%w: no template for --lang %q: choose one of %s", errUsage, lang, strings.Join(names, ", "))
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
	root := path.Join("templates", lang)
	var out []templateOutput
	err := fs.WalkDir(templateFiles, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := templateFiles.ReadFile(p)
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
