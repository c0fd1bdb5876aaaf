package atomicfile

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestWriteReplacesWholeFileWithMode(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	for _, tc := range []struct {
		name   string
		before string // "" means no file yet
		perm   os.FileMode
	}{
		{"new file", "", 0o644},
		{"over an older, longer file", "an older and much longer content\n", 0o600},
		{"mode wider than the umask", "x", 0o755},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "target")
			if tc.before != "" {
				if err := os.WriteFile(path, []byte(tc.before), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := Write(path, []byte("new"), tc.perm); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(path)
			if err != nil || string(got) != "new" {
				t.Fatalf("content %q, %v; want %q", got, err, "new")
			}
			info, _ := os.Stat(path)
			if info.Mode().Perm() != tc.perm {
				t.Errorf("mode %v, want %v", info.Mode().Perm(), tc.perm)
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 {
				t.Errorf("files left beside the target: %v", entries)
			}
		})
	}
}

func TestWriteFailsWithoutDirectoryAndLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	if err := Write(filepath.Join(dir, "missing", "target"), []byte("x"), 0o600); err == nil {
		t.Fatal("want an error for a missing directory")
	}
	// A target that is a directory cannot be replaced: the temp file goes, the target stays.
	target := filepath.Join(dir, "a-dir")
	if err := os.Mkdir(target, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := Write(target, []byte("x"), 0o600); err == nil {
		t.Fatal("want an error when renaming over a directory")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "a-dir" {
		t.Errorf("left behind: %v", entries)
	}
}

func TestRemoveTempsKeepsTargets(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{".f.json.123.tmp", "f.json", "x.123.tmp", ".hidden"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := RemoveTemps(dir); err != nil {
		t.Fatal(err)
	}
	var left []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		left = append(left, e.Name())
	}
	want := []string{".hidden", "f.json", "x.123.tmp"}
	if len(left) != len(want) {
		t.Fatalf("left %q, want %q", left, want)
	}
	for i := range want {
		if left[i] != want[i] {
			t.Errorf("left %q, want %q", left, want)
		}
	}
}
