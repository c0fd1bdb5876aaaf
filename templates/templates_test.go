package templates

import (
	"errors"
	"go/format"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"faasd/config"
)

// Every template renders, its table parses as part of a stack file, what it runs exists
// among its files, and generated Go is gofmt-clean.
func TestTemplatesRender(t *testing.T) {
	for _, tmpl := range List() {
		t.Run(tmpl.Lang, func(t *testing.T) {
			files, err := renderTemplate(tmpl.Lang, "my-fn")
			if err != nil {
				t.Fatal(err)
			}
			if len(files) == 0 {
				t.Fatal("no files")
			}
			names := map[string]templateOutput{}
			for _, f := range files {
				names[f.path] = f
				if strings.Contains(string(f.data), "{{") {
					t.Errorf("%s: unrendered template text", f.path)
				}
				if strings.HasSuffix(f.path, ".go") {
					if formatted, err := format.Source(f.data); err != nil || string(formatted) != string(f.data) {
						t.Errorf("%s: not gofmt-clean (%v)", f.path, err)
					}
				}
			}
			table, err := render("my-fn", tmpl.table)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			cfg, err := config.Parse(filepath.Join(dir, "faasd.toml"), table)
			if err != nil {
				t.Fatalf("table does not parse: %v\n%s", err, table)
			}
			fn := cfg.Functions["my-fn"]
			if fn == nil || fn.Workdir != filepath.Join(dir, "my-fn") {
				t.Fatalf("want functions.my-fn with workdir my-fn, got %+v", fn)
			}
			// The file a command or fprocess names, when it is in the folder, must be there
			// (or be the build's output).
			var arg string
			switch {
			case fn.Fprocess != "":
				arg = strings.Fields(fn.Fprocess)[0]
			case len(fn.Command) > 1:
				arg = fn.Command[len(fn.Command)-1]
			}
			arg = strings.TrimPrefix(arg, "./")
			if arg != "" && !strings.Contains(arg, "/") {
				if _, ok := names[arg]; !ok {
					t.Errorf("%s runs %s, which the template does not create", tmpl.Lang, arg)
				}
			}
			if fn.Fprocess != "" && names[strings.TrimPrefix(fn.Fprocess, "./")].mode&0o111 == 0 {
				t.Errorf("%s is not executable", fn.Fprocess)
			}
			if strings.Contains(string(table), "python3") && !strings.Contains(string(table), "/usr/bin/python3") {
				t.Error("python must be Debian's /usr/bin/python3, never one found in a private PATH")
			}
		})
	}
}

func TestWriteTemplateModes(t *testing.T) {
	files, err := renderTemplate("bash", "x")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "x")
	old := setUmask(0o077)
	defer setUmask(old)
	if err := writeTemplate(dir, files); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{dir: 0o755, filepath.Join(dir, "handler.sh"): 0o755} {
		info, err := os.Stat(p)
		if err != nil || info.Mode().Perm() != want {
			t.Errorf("%s: %v %v, want %v (replicas run as unprivileged accounts)", p, info.Mode().Perm(), err, want)
		}
	}
	if err := writeTemplate(dir, files); err == nil {
		t.Error("writing over an existing folder: want an error")
	}
}

func TestFindTemplateUnknown(t *testing.T) {
	_, err := Find("cobol")
	if !errors.Is(err, ErrUnknown) || !strings.Contains(err.Error(), "go, python3, node, ruby, bash") {
		t.Errorf("Find(cobol) = %v, want the list of templates", err)
	}
}

func TestCreateMakesTheFolderAndTheTableOrNeither(t *testing.T) {
	dir := t.TempDir()
	stackPath := filepath.Join(dir, "faasd.toml")
	bash, err := Find("bash")
	if err != nil {
		t.Fatal(err)
	}
	fnDir, err := Create(stackPath, "hello", bash)
	if err != nil {
		t.Fatal(err)
	}
	if fnDir != filepath.Join(dir, "hello") {
		t.Errorf("folder %s, want %s", fnDir, filepath.Join(dir, "hello"))
	}
	cfg, err := config.Load(stackPath)
	if err != nil {
		t.Fatal(err)
	}
	if f := cfg.Functions["hello"]; f == nil || f.Fprocess != "./handler.sh" || f.Workdir != fnDir {
		t.Errorf("stack file: %+v", f)
	}
	before, _ := os.ReadFile(stackPath)
	for _, tc := range []struct {
		name, fn, want string
		prepare        func()
	}{
		{"the folder exists", "hello", "already exists", nil},
		{"the stack file has the name", "taken", "already has functions.taken", func() {
			os.WriteFile(stackPath, append(before, "\n[functions.taken]\nfprocess = \"cat\"\n"...), 0o644)
		}},
		{"a bad name", "Bad_Name", "invalid function name", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.prepare != nil {
				tc.prepare()
			}
			was, _ := os.ReadFile(stackPath)
			if _, err := Create(stackPath, tc.fn, bash); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Create(%s) = %v, want %q", tc.fn, err, tc.want)
			}
			if now, _ := os.ReadFile(stackPath); string(now) != string(was) {
				t.Errorf("the stack file changed:\n%s", now)
			}
			if tc.fn != "hello" {
				if _, err := os.Stat(filepath.Join(dir, tc.fn)); !os.IsNotExist(err) {
					t.Errorf("a folder was left behind: %v", err)
				}
			}
		})
	}
}
