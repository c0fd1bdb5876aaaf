package stack

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"faasd/config"
)

func write(t *testing.T, path, text string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func TestTreeHashSeesWhatReplicasRun(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "fn")
	state := filepath.Join(dir, "state")
	bin := filepath.Join(root, "bin", "server")
	f := &config.Function{Name: "fn", Workdir: dir, Command: []string{"../bin/server"}}
	write(t, filepath.Join(dir, "main.py"), "print(1)", 0o644)
	write(t, bin, "v1", 0o755)
	base, err := TreeHash(f, state)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		change  func()
		changes bool
	}{
		{"nothing", func() {}, false},
		{"a cache of Python's", func() { write(t, filepath.Join(dir, "__pycache__", "main.pyc"), "x", 0o644) }, false},
		{"version control", func() { write(t, filepath.Join(dir, ".git", "HEAD"), "x", 0o644) }, false},
		{"the state directory", func() { write(t, filepath.Join(state, "run", "x"), "x", 0o644) }, false},
		{"a source file", func() { write(t, filepath.Join(dir, "main.py"), "print(2)", 0o644) }, true},
		{"a file's mode", func() { os.Chmod(filepath.Join(dir, "main.py"), 0o755) }, true},
		{"a new file", func() { write(t, filepath.Join(dir, "lib", "x.py"), "", 0o644) }, true},
		{"the program outside the folder", func() { write(t, bin, "v2", 0o755) }, true},
		{"a symbolic link", func() { os.Symlink("main.py", filepath.Join(dir, "link")) }, true},
	} {
		tc.change()
		got, err := TreeHash(f, state)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if changed := got != base; changed != tc.changes {
			t.Errorf("%s: hash changed = %v, want %v", tc.name, changed, tc.changes)
		}
		base = got
	}
}

func TestTreeHashMissingWorkdir(t *testing.T) {
	f := &config.Function{Name: "fn", Workdir: filepath.Join(t.TempDir(), "gone"), Fprocess: "cat"}
	if _, err := TreeHash(f); err == nil || !strings.Contains(err.Error(), "fn") {
		t.Errorf("TreeHash of a missing folder = %v, want an error naming the function", err)
	}
}

func TestDeploymentHashFollowsSpecAndFiles(t *testing.T) {
	f := &config.Function{Name: "fn", Workdir: "/srv/fn", Command: []string{"./server"}, Env: map[string]string{"A": "1"},
		Annotations: map[string]string{"team": "x"}, LockFile: config.DefaultLockFile}
	hash := func(f *config.Function, tree string) string {
		d, err := Deployment(f, tree)
		if err != nil {
			t.Fatal(err)
		}
		if d.Annotations["team"] != "x" {
			t.Error("user annotations lost")
		}
		return d.Annotations[BuildHashAnnotation]
	}
	a := hash(f, "t1")
	if a == "" || a != hash(f, "t1") {
		t.Fatal("the hash is not stable")
	}
	if hash(f, "t2") == a {
		t.Error("other files, same hash")
	}
	g := *f
	g.Env = map[string]string{"A": "2"}
	if hash(&g, "t1") == a {
		t.Error("other spec, same hash")
	}
	if _, ok := f.Annotations[BuildHashAnnotation]; ok {
		t.Error("Deployment changed the function's own annotations")
	}
}

func TestSelect(t *testing.T) {
	cfg := &config.Config{Path: "/s/faasd.toml", Functions: map[string]*config.Function{
		"api-a": {Name: "api-a"}, "api-b": {Name: "api-b"}, "web": {Name: "web"},
	}}
	for _, tc := range []struct {
		filter string
		want   string
		err    string
	}{
		{"", "api-a api-b web", ""},
		{"web", "web", ""},
		{"api-*", "api-a api-b", ""},
		{"nope", "", `no function matches --filter "nope"`},
		{"[", "", "syntax error"},
	} {
		fns, err := Select(cfg, tc.filter)
		var names []string
		for _, f := range fns {
			names = append(names, f.Name)
		}
		if got := strings.Join(names, " "); got != tc.want || (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("Select(%q) = %q, %v; want %q, %q", tc.filter, got, err, tc.want, tc.err)
		}
	}
}

func TestBuild(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "build.sh"), "#!/bin/sh\necho building in $(pwd)\n", 0o755)
	var out strings.Builder
	ok := &config.Function{Name: "fn", Workdir: dir, Build: []string{"./build.sh"}}
	if err := Build(context.Background(), ok, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "building in "+dir) {
		t.Errorf("build output %q: want it run in the workdir", out.String())
	}
	for _, tc := range []struct {
		build []string
		want  string
		code  int
	}{
		{[]string{"sh", "-c", "exit 3"}, "build fn: `sh -c exit 3` exited with status 3", 3},
		{[]string{"no-such-program-faasd"}, "build fn: `no-such-program-faasd`: exec: \"no-such-program-faasd\": executable file not found in $PATH", -1},
	} {
		f := &config.Function{Name: "fn", Workdir: dir, Build: tc.build}
		err := Build(context.Background(), f, io.Discard)
		var be *BuildError
		if !errors.As(err, &be) || be.ExitCode != tc.code || err.Error() != tc.want {
			t.Errorf("Build(%q) = %v; want %q (exit %d)", tc.build, err, tc.want, tc.code)
		}
	}
	if err := Build(context.Background(), &config.Function{Name: "fn", Workdir: dir}, io.Discard); err != nil {
		t.Errorf("no build step: %v", err)
	}
}

func TestAddFunction(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "faasd.toml")
	table := "[functions.a]\nfprocess = \"cat\"\n"
	if err := AddFunction(path, "a", table); err != nil {
		t.Fatal(err)
	}
	existing := "# my stack\n[gateway]\nlisten = \"127.0.0.1:9999\"  # keep me\n\n" + table
	write(t, path, existing, 0o640)
	if err := AddFunction(path, "b", "[functions.b]\nfprocess = \"wc\"\n"); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(got), existing) || !strings.HasSuffix(string(got), "\n[functions.b]\nfprocess = \"wc\"\n") {
		t.Errorf("the file lost its text or did not gain the table:\n%s", got)
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want the file's own 0640", info.Mode().Perm())
	}
	if err := AddFunction(path, "a", table); !errors.Is(err, ErrExists) {
		t.Errorf("adding a again = %v, want ErrExists", err)
	}
	before, _ := os.ReadFile(path)
	if err := AddFunction(path, "c", "[functions.c]\nnonsense = 1\nfprocess = \"cat\"\n"); err == nil {
		t.Error("a table that breaks the file: want an error")
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Error("a failed add changed the file")
	}
	write(t, path, "[functions.x]\nlables = {}\n", 0o644)
	var cerr *config.Error
	if err := AddFunction(path, "d", table); !errors.As(err, &cerr) || !strings.Contains(err.Error(), "faasd.toml:2: functions.x.lables: unknown key") {
		t.Errorf("an invalid file = %v, want its file:line errors", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}
