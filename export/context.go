package export

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"faasd/stack"
)

// Bounds on what one build context copies: a folder beyond them is almost certainly not
// one function's (a home directory, "/").
const (
	maxContextFiles = 20_000
	maxContextBytes = 1 << 30
)

// dependencyDirs are rebuilt inside the image from the function's manifest (npm, pip),
// never copied from the host, where they were built for another system.
var dependencyDirs = []string{"node_modules", ".venv", "venv"}

// copyTree lists the files under root (or root itself, when it is a file) for a build
// context, with paths relative to root ("." for root itself). What faasd leaves out of
// a function's hash (version control, byte-code caches, its state directory) and the
// dependency folders the image rebuilds are left out here too.
func (e *exporter) copyTree(root string) ([]File, error) {
	skip := append([]string{e.cfg.Gateway.StateDir}, e.opts.Skip...)
	var out []File
	var total int64
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != root && (stack.Skipped(p, skip) || slices.Contains(dependencyDirs, d.Name())) {
				return filepath.SkipDir
			}
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		if len(out) >= maxContextFiles {
			return fmt.Errorf("more than %d files: is the workdir the function's own folder?", maxContextFiles)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		f := File{Path: filepath.ToSlash(rel), Mode: info.Mode().Perm()}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			if f.Link, err = os.Readlink(p); err != nil {
				return err
			}
		case d.Type().IsRegular():
			f.Src = p
			if total += info.Size(); total > maxContextBytes {
				return fmt.Errorf("more than %d bytes: is the workdir the function's own folder?", int64(maxContextBytes))
			}
		default:
			return nil // sockets, pipes, devices: nothing an image holds
		}
		out = append(out, f)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("copy %s: %w", root, err)
	}
	return out, nil
}
