package filewatch

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func start(t *testing.T, settle time.Duration) *Watcher {
	t.Helper()
	w, err := New(settle, func(err error) { t.Errorf("watch: %v", err) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// next returns the next key reported, failing the test if none comes in time.
func next(t *testing.T, w *Watcher) string {
	t.Helper()
	select {
	case key := <-w.Changes():
		return key
	case <-time.After(10 * time.Second):
		t.Fatal("no change reported within 10s")
		return ""
	}
}

// quiet checks that nothing is reported until a marker change comes through: events are
// delivered in order, so whatever preceded the marker would have come first.
func quiet(t *testing.T, w *Watcher, marker string) {
	t.Helper()
	write(t, marker, "x")
	if key := next(t, w); key != "marker" {
		t.Errorf("reported %q, want nothing before the marker", key)
	}
}

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFileReplacedByRenameIsReportedOnce(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "faasd.toml")
	write(t, cfg, "a")
	w := start(t, 50*time.Millisecond)
	if err := w.File(cfg, "config"); err != nil {
		t.Fatal(err)
	}
	if err := w.File(filepath.Join(dir, "marker"), "marker"); err != nil {
		t.Fatal(err)
	}
	// An editor's save: a temporary file, written in pieces, renamed over the original.
	tmp := cfg + ".swp"
	write(t, tmp, "b")
	write(t, tmp, "bc")
	if err := os.Rename(tmp, cfg); err != nil {
		t.Fatal(err)
	}
	if key := next(t, w); key != "config" {
		t.Fatalf("reported %q, want config", key)
	}
	// A neighbour changing is none of the file's business.
	write(t, filepath.Join(dir, "other.toml"), "x")
	quiet(t, w, filepath.Join(dir, "marker"))
}

func TestTreeReportsNewSubdirectoriesAndSkips(t *testing.T) {
	root := t.TempDir()
	fn := filepath.Join(root, "fn")
	write(t, filepath.Join(fn, "main.go"), "package main")
	w := start(t, 50*time.Millisecond)
	w.Tree(fn, "fn", func(dir string) bool { return filepath.Base(dir) == ".git" })
	if err := w.File(filepath.Join(root, "marker"), "marker"); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(fn, "main.go"), "package main // changed")
	if key := next(t, w); key != "fn" {
		t.Fatalf("reported %q, want fn", key)
	}
	// A folder made after the watch began is watched too.
	if err := os.Mkdir(filepath.Join(fn, "pkg"), 0o755); err != nil {
		t.Fatal(err)
	}
	if key := next(t, w); key != "fn" {
		t.Fatalf("reported %q for the new folder, want fn", key)
	}
	write(t, filepath.Join(fn, "pkg", "lib.go"), "package pkg")
	if key := next(t, w); key != "fn" {
		t.Fatalf("reported %q for a file in the new folder, want fn", key)
	}
	// A skipped folder: its creation is a change of fn, what happens inside is not.
	if err := os.Mkdir(filepath.Join(fn, ".git"), 0o755); err != nil {
		t.Fatal(err)
	}
	if key := next(t, w); key != "fn" {
		t.Fatalf("reported %q, want fn", key)
	}
	write(t, filepath.Join(fn, ".git", "index"), "x")
	quiet(t, w, filepath.Join(root, "marker"))
}

func TestKeysChangedTogetherAreEachReportedOnce(t *testing.T) {
	root := t.TempDir()
	// Long enough that the writes below fall within one settling period even on a
	// loaded machine.
	w := start(t, 500*time.Millisecond)
	for _, name := range []string{"a", "b"} {
		if err := os.Mkdir(filepath.Join(root, name), 0o755); err != nil {
			t.Fatal(err)
		}
		w.Tree(filepath.Join(root, name), name, nil)
	}
	for i := range 5 {
		write(t, filepath.Join(root, "a", "f"), strings.Repeat("x", i))
		write(t, filepath.Join(root, "b", "f"), strings.Repeat("x", i))
	}
	got := []string{next(t, w), next(t, w)}
	slices.Sort(got)
	if !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("reported %q, want a and b once each", got)
	}
	if err := w.File(filepath.Join(root, "marker"), "marker"); err != nil {
		t.Fatal(err)
	}
	quiet(t, w, filepath.Join(root, "marker"))
}
