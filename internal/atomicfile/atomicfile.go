// Package atomicfile replaces files so that a crash at any moment leaves either the old
// or the new content on disk, never a mix or an empty file: write a temporary file beside
// the target, fsync it, rename it over the target, then fsync the directory so that the
// rename itself is durable.
package atomicfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// tempSuffix ends the name of a temporary file. Temporary files also start with a dot, so
// that they never pass for a target in a directory whose readers skip hidden names (a
// secret called "x.123.tmp" would be a valid secret name).
const tempSuffix = ".tmp"

// Write replaces the file at path with data, with permissions perm. The directory must
// exist. Readers see the old file or the new one, whole.
func Write(path string, data []byte, perm os.FileMode) error {
	dir, name := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+name+".*"+tempSuffix)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // after the rename this fails, harmlessly
	err = errors.Join(write(tmp, data, perm), tmp.Close())
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func write(f *os.File, data []byte, perm os.FileMode) error {
	// Chmod, not the umask-filtered mode of CreateTemp: the caller's perm is what it gets.
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	return f.Sync()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// IsTemp reports whether a file name is one of Write's temporary files: one left behind
// by a crash is garbage, since the rename never happened and the target is intact.
func IsTemp(name string) bool {
	return strings.HasPrefix(name, ".") && strings.HasSuffix(name, tempSuffix)
}

// RemoveTemps deletes the temporary files a crashed Write left in dir.
func RemoveTemps(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if e.Type().IsRegular() && IsTemp(e.Name()) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
