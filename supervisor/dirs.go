package supervisor

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// The daemon, often root, creates and changes files in directories that the programs it
// runs may write in, or next to them: a replica's /tmp and secrets, a service's data dir.
// A program that can write in a directory can plant a symbolic link there, or swap a
// directory for one between two calls, and a root daemon that then opens, chowns or
// writes by path follows the link wherever it points. So the daemon never does that by
// path: it holds a handle to a directory that only it can write in, resolves every name
// relative to that handle without following links (openat with O_NOFOLLOW), creates
// files exclusively under names nobody can guess (O_EXCL), and sets owner and mode
// through the open file (fchown, fchmod), never through a name.

// dir is a handle to a directory, with its path for messages.
type dir struct {
	f    *os.File
	path string
}

// openDir opens a directory the operator named (the state directory): a link there is
// theirs to make, so it is followed.
func openDir(path string) (*dir, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return &dir{f: os.NewFile(uintptr(fd), path), path: path}, nil
}

func (d *dir) fd() int { return int(d.f.Fd()) }

func (d *dir) close() error { return d.f.Close() }

func (d *dir) join(name string) string { return filepath.Join(d.path, name) }

// sub opens the directory name in d, which must not be a symbolic link.
func (d *dir) sub(name string) (*dir, error) {
	fd, err := unix.Openat(d.fd(), name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: d.join(name), Err: err}
	}
	return &dir{f: os.NewFile(uintptr(fd), d.join(name)), path: d.join(name)}, nil
}

// mkdir creates the directory name in d, which must not exist, and sets its owner and
// mode (-1 keeps the daemon's id, as chown does).
func (d *dir) mkdir(name string, mode os.FileMode, uid, gid int) (*dir, error) {
	if err := unix.Mkdirat(d.fd(), name, 0o700); err != nil {
		return nil, &fs.PathError{Op: "mkdir", Path: d.join(name), Err: err}
	}
	sub, err := d.sub(name)
	if err != nil {
		return nil, err
	}
	if err := sub.set(mode, uid, gid); err != nil {
		sub.close()
		return nil, err
	}
	return sub, nil
}

// ensure opens the directory name in d, creating it with mode when it is missing.
func (d *dir) ensure(name string, mode os.FileMode) (*dir, error) {
	sub, err := d.mkdir(name, mode, -1, -1)
	if errors.Is(err, fs.ErrExist) {
		return d.sub(name)
	}
	return sub, err
}

// set sets the owner, then the mode of the directory itself: chown clears the set-id
// bits, and mkdir's mode went through the umask.
func (d *dir) set(mode os.FileMode, uid, gid int) error {
	if uid != -1 || gid != -1 {
		if err := d.f.Chown(uid, gid); err != nil {
			return err
		}
	}
	return d.f.Chmod(mode)
}

// stat describes the directory itself.
func (d *dir) stat() (*unix.Stat_t, error) {
	var st unix.Stat_t
	if err := unix.Fstat(d.fd(), &st); err != nil {
		return nil, &fs.PathError{Op: "stat", Path: d.path, Err: err}
	}
	return &st, nil
}

// exists reports whether d has an entry name, without following it.
func (d *dir) exists(name string) (bool, error) {
	var st unix.Stat_t
	err := unix.Fstatat(d.fd(), name, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.ENOENT):
		return false, nil
	default:
		return false, &fs.PathError{Op: "stat", Path: d.join(name), Err: err}
	}
}

// remove removes the file name from d; a link is removed, not followed.
func (d *dir) remove(name string) error {
	if err := unix.Unlinkat(d.fd(), name, 0); err != nil {
		return &fs.PathError{Op: "remove", Path: d.join(name), Err: err}
	}
	return nil
}

// writeFile replaces the file name in d with data, owned by uid and gid (-1 keeps the
// daemon's) with mode. Readers see the old file or the new one, whole. The new content
// goes into a file of a fresh random name, created exclusively, so no link or file that
// anyone planted is ever written through; rename then replaces name itself, a link
// included, and never what a link points to.
func (d *dir) writeFile(name string, data []byte, mode os.FileMode, uid, gid int) error {
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := "." + name + "." + hex.EncodeToString(rnd[:]) + ".new"
	fd, err := unix.Openat(d.fd(), tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return &fs.PathError{Op: "create", Path: d.join(tmp), Err: err}
	}
	f := os.NewFile(uintptr(fd), d.join(tmp))
	err = writeAll(f, data, mode, uid, gid)
	if err == nil {
		err = unix.Renameat(d.fd(), tmp, d.fd(), name)
	}
	if err != nil {
		unix.Unlinkat(d.fd(), tmp, 0)
		return fmt.Errorf("write %s: %w", d.join(name), err)
	}
	return nil
}

func writeAll(f *os.File, data []byte, mode os.FileMode, uid, gid int) error {
	_, err := f.Write(data)
	if err == nil && (uid != -1 || gid != -1) {
		err = f.Chown(uid, gid)
	}
	if err == nil {
		err = f.Chmod(mode)
	}
	return errors.Join(err, f.Close())
}
