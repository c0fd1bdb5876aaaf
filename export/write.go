package export

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// manifestName lists, in the output directory, the files the last export wrote there.
// The next export replaces those and removes the ones it no longer writes, and leaves
// everything else alone: faas-cli's build/ and template/ folders, the user's own files.
const manifestName = ".faasd-export"

// ErrNotOurs is an output directory, or a file in it, that export did not write.
var ErrNotOurs = errors.New("not written by faasd export")

// Write puts the files of r under dir, creating it. A directory that holds anything but
// what an earlier export wrote there is refused, unless force: then files of the same
// names are overwritten, and nothing else is touched.
func (r *Result) Write(dir string, force bool) error {
	old, err := readManifest(dir)
	if err != nil {
		return err
	}
	paths := make([]string, 0, len(r.Files))
	for _, f := range r.Files {
		paths = append(paths, f.Path)
	}
	if !force {
		if old == nil {
			entries, err := os.ReadDir(dir)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("output directory: %w", err)
			}
			if len(entries) > 0 {
				return fmt.Errorf("%s is not empty and holds no earlier export: %w (choose an empty or new -o directory, or --force to write into it, replacing only the files of the export's names)", dir, ErrNotOurs)
			}
		}
		for _, p := range paths {
			if _, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(p))); err == nil && !slices.Contains(old, p) {
				return fmt.Errorf("%s: %w (--force overwrites it)", filepath.Join(dir, filepath.FromSlash(p)), ErrNotOurs)
			}
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("output directory: %w", err)
	}
	// Until every file is written, the manifest names the old files and the new ones, so
	// that an export cut short is still recognised as one, and cleaned up by the next.
	if err := writeManifest(dir, append(slices.Clone(old), paths...)); err != nil {
		return err
	}
	for _, p := range old {
		if !slices.Contains(paths, p) {
			if err := removeStale(dir, p); err != nil {
				return err
			}
		}
	}
	for _, f := range r.Files {
		if err := writeFile(dir, f); err != nil {
			return err
		}
	}
	return writeManifest(dir, paths)
}

func readManifest(dir string) ([]string, error) {
	data, err := os.ReadFile(filepath.Join(dir, manifestName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the earlier export's list: %w", err)
	}
	paths := []string{}
	for _, line := range strings.Split(string(data), "\n") {
		// Only paths inside the directory count: the list is a file anyone could edit.
		if line != "" && !strings.HasPrefix(line, "#") && filepath.IsLocal(filepath.FromSlash(line)) {
			paths = append(paths, line)
		}
	}
	return paths, nil
}

func writeManifest(dir string, paths []string) error {
	paths = slices.Compact(slices.Sorted(slices.Values(paths)))
	text := "# Files written by `faasd export`; the next export replaces them.\n" + strings.Join(paths, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(dir, manifestName), []byte(text), 0o644); err != nil {
		return fmt.Errorf("write the export's list: %w", err)
	}
	return nil
}

// removeStale removes a file an earlier export wrote and this one does not, and the
// folders it leaves empty.
func removeStale(dir, p string) error {
	full := filepath.Join(dir, filepath.FromSlash(p))
	if err := os.Remove(full); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", full, err)
	}
	for d := filepath.Dir(full); d != dir && strings.HasPrefix(d, dir); d = filepath.Dir(d) {
		if os.Remove(d) != nil { // not empty: keep it and its parents
			break
		}
	}
	return nil
}

func writeFile(dir string, f File) error {
	full := filepath.Join(dir, filepath.FromSlash(f.Path))
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return fmt.Errorf("write %s: %w", full, err)
	}
	// A file of the same name goes first: it may be a link, which writing would follow.
	if err := os.Remove(full); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("write %s: %w", full, err)
	}
	switch {
	case f.Link != "":
		if err := os.Symlink(f.Link, full); err != nil {
			return fmt.Errorf("write %s: %w", full, err)
		}
		return nil
	case f.Src != "":
		return copyFile(f.Src, full, f.Mode)
	}
	if err := os.WriteFile(full, f.Data, f.Mode); err != nil {
		return fmt.Errorf("write %s: %w", full, err)
	}
	return nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	// The umask may have taken bits the file had; the image wants them as they were.
	return os.Chmod(dst, mode)
}
