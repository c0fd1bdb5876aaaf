package stack

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"faasd/api"
	"faasd/catalog"
	"faasd/config"
)

// BuildHashAnnotation carries the hash of what a deployed function runs; equal hashes
// make a deploy a no-op. It is the annotation the daemon's restart route records, too.
const BuildHashAnnotation = catalog.RevisionAnnotation

// Bounds on what TreeHash reads: a workdir beyond them is almost certainly not one
// function's folder (a home directory, "/"), and hashing it would take minutes.
const (
	maxTreeFiles = 50_000
	maxTreeBytes = 2 << 30
)

// skippedDirs never hold what a replica runs: version control, Python's byte-code cache
// (rewritten by merely running the code), and faasd's default state directory.
var skippedDirs = map[string]bool{".git": true, "__pycache__": true, ".faasd": true}

// Skipped reports whether a directory is left out of hashes and watches; skip lists
// absolute paths to leave out besides (the stack's state directory).
func Skipped(dir string, skip []string) bool {
	return skippedDirs[filepath.Base(dir)] || slices.Contains(skip, dir)
}

// TreeHash hashes what a function's replicas would run: every regular file under its
// workdir (path, mode and content; symbolic links by target), and the program of its
// command or fprocess when that lives outside the workdir (hello-go's ../../bin/hello-go).
// Build outputs are files like any other, so after a build the hash says whether the
// result differs from what runs. skip lists directories to leave out (absolute).
func TreeHash(f *config.Function, skip ...string) (string, error) {
	h := sha256.New()
	var files int
	var total int64
	err := filepath.WalkDir(f.Workdir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != f.Workdir && Skipped(p, skip) {
				return filepath.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel(f.Workdir, p)
		if files++; files > maxTreeFiles {
			return fmt.Errorf("more than %d files: set workdir to the function's own folder", maxTreeFiles)
		}
		n, err := hashEntry(h, rel, p, d.Type())
		if total += n; total > maxTreeBytes {
			return fmt.Errorf("more than %d bytes: set workdir to the function's own folder", int64(maxTreeBytes))
		}
		return err
	})
	if err != nil {
		return "", fmt.Errorf("hash function %s: workdir %s: %w", f.Name, f.Workdir, err)
	}
	if prog := program(f); prog != "" {
		if rel, err := filepath.Rel(f.Workdir, prog); err != nil || strings.HasPrefix(rel, "..") {
			info, err := os.Lstat(prog)
			if err == nil {
				if _, err := hashEntry(h, "program:"+prog, prog, info.Mode().Type()); err != nil {
					return "", fmt.Errorf("hash function %s: %w", f.Name, err)
				}
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// hashEntry adds one file to h and returns how many content bytes it read.
func hashEntry(h hash.Hash, name, p string, typ fs.FileMode) (int64, error) {
	switch {
	case typ&fs.ModeSymlink != 0:
		target, err := os.Readlink(p)
		if err != nil {
			return 0, err
		}
		fmt.Fprintf(h, "link\x00%s\x00%s\x00", name, target)
		return 0, nil
	case typ.IsRegular():
		file, err := os.Open(p)
		if err != nil {
			return 0, err
		}
		defer file.Close()
		info, err := file.Stat()
		if err != nil {
			return 0, err
		}
		fmt.Fprintf(h, "file\x00%s\x00%o\x00%d\x00", name, info.Mode().Perm(), info.Size())
		return io.Copy(h, file)
	default:
		return 0, nil // sockets, pipes, devices: nothing a replica runs
	}
}

// program is the absolute path of the file a function's command or fprocess runs, when it
// names one by path rather than through PATH.
func program(f *config.Function) string {
	prog := f.Program()
	if !strings.Contains(prog, "/") {
		return ""
	}
	if !filepath.IsAbs(prog) {
		prog = filepath.Join(f.Workdir, prog)
	}
	return filepath.Clean(prog)
}

// Deployment is what `faasd deploy` sends for a function whose files hash to tree: the
// function as the daemon would run it from the file, annotated with a hash of that spec
// and the tree together, so that a deploy with an equal hash changes nothing.
func Deployment(f *config.Function, tree string) (api.Deployment, error) {
	d := catalog.DeploymentFor(f)
	delete(d.Annotations, BuildHashAnnotation)
	spec, err := json.Marshal(d)
	if err != nil {
		return d, fmt.Errorf("deployment of %s: %w", f.Name, err)
	}
	h := sha256.New()
	h.Write(spec)
	h.Write([]byte{0})
	h.Write([]byte(tree))
	if d.Annotations == nil {
		d.Annotations = map[string]string{}
	}
	d.Annotations = maps.Clone(d.Annotations)
	d.Annotations[BuildHashAnnotation] = hex.EncodeToString(h.Sum(nil))
	return d, nil
}
