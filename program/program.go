// Package program finds the file a function's replica, or a service, executes, the way the
// daemon starts it: a name with a slash relative to the working directory, a bare name in
// the PATH the process is given. The daemon (when it loads faasd.toml, and to explain why a
// function fails), `faasd up` (before it deploys) and the classic watchdog (before it says
// it is ready) all ask it, so that they agree on what runs and say the same when it cannot.
// It only looks at the file system; it starts nothing, and it depends on no other part of
// faasd, so that the watchdog inside a replica can use it too.
package program

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// DefaultPATH is a replica's PATH when the daemon has none.
const DefaultPATH = "/usr/local/bin:/usr/bin:/bin"

// Reasons a program cannot run, beside fs.ErrNotExist and fs.ErrPermission (the file is
// there, but this account may not execute it).
var (
	ErrNotExecutable = errors.New("not executable")
	ErrDirectory     = errors.New("a directory")
	// ErrUnreachable is a file behind a directory this account may not search.
	ErrUnreachable = fmt.Errorf("unreachable: %w", fs.ErrPermission)
)

// Error is a program that cannot be run, and where it was looked for.
type Error struct {
	Program string // as written: "./server", "sha512sum"
	File    string // the file that was tried; "" when a bare name is in no directory of PATH
	Dir     string // the working directory a relative name resolves against
	PATH    string // the directories searched for a bare name
	Err     error  // fs.ErrNotExist, fs.ErrPermission, ErrUnreachable, ErrNotExecutable or ErrDirectory
	Mode    fs.FileMode
	UID     int // the account that asked, for fs.ErrPermission
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "program %s: ", e.Program)
	switch {
	case e.File == "":
		fmt.Fprintf(&b, "not found in any directory of PATH (%s)", e.PATH)
		return b.String()
	case !strings.Contains(e.Program, "/"):
		fmt.Fprintf(&b, "in PATH (%s), %s ", e.PATH, e.File)
	case e.File != e.Program:
		b.WriteString(e.File + " ")
	}
	switch {
	case errors.Is(e.Err, fs.ErrNotExist):
		b.WriteString("does not exist")
	case errors.Is(e.Err, ErrNotExecutable):
		fmt.Fprintf(&b, "is not executable (%s)", e.Mode)
	case errors.Is(e.Err, ErrDirectory):
		b.WriteString("is a directory")
	case errors.Is(e.Err, ErrUnreachable):
		fmt.Fprintf(&b, "cannot be reached by uid %d: permission denied", e.UID)
	case errors.Is(e.Err, fs.ErrPermission):
		fmt.Fprintf(&b, "cannot be executed by uid %d: permission denied", e.UID)
	default:
		fmt.Fprintf(&b, "cannot be executed: %v", e.Err)
	}
	if strings.Contains(e.Program, "/") && !filepath.IsAbs(e.Program) {
		fmt.Fprintf(&b, " (relative to the workdir %s)", e.Dir)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Resolve returns the absolute path of the file that prog names for a process started in
// the working directory dir with the environment env, or an *Error saying why it cannot
// run it. A name with a slash is relative to dir; a bare name is looked up in env's PATH,
// whose relative entries are relative to dir, as a shell started in dir would.
func Resolve(prog, dir string, env []string) (string, error) {
	return Find(prog, dir, PATH(env))
}

// Find is Resolve with the PATH given.
func Find(prog, dir, path string) (string, error) {
	if prog == "" {
		return "", errors.New("no program: the command is empty")
	}
	if strings.Contains(prog, "/") {
		file := prog
		if !filepath.IsAbs(file) {
			file = filepath.Join(dir, file)
		}
		if mode, err := runnable(file); err != nil {
			return "", &Error{Program: prog, File: file, Dir: dir, Err: err, Mode: mode, UID: os.Geteuid()}
		}
		return file, nil
	}
	// Like a shell: the first runnable file wins; if none is, the first file that exists
	// says why it cannot run, which tells more than "not found". A directory of PATH this
	// account may not search (root's own, for a replica run as nobody) has nothing for it.
	var first *Error
	for _, d := range filepath.SplitList(path) {
		if !filepath.IsAbs(d) {
			d = filepath.Join(dir, d) // "" and "." are the working directory
		}
		file := filepath.Join(d, prog)
		mode, err := runnable(file)
		if err == nil {
			return file, nil
		}
		if first == nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, ErrUnreachable) {
			first = &Error{Program: prog, File: file, Dir: dir, PATH: path, Err: err, Mode: mode, UID: os.Geteuid()}
		}
	}
	if first != nil {
		return "", first
	}
	return "", &Error{Program: prog, Dir: dir, PATH: path, Err: fs.ErrNotExist}
}

// runnable checks that file is a regular file this process may execute.
func runnable(file string) (fs.FileMode, error) {
	info, err := os.Stat(file)
	switch {
	case errors.Is(err, fs.ErrPermission):
		return 0, ErrUnreachable
	case err != nil:
		return 0, fs.ErrNotExist
	case info.IsDir():
		return info.Mode(), ErrDirectory
	case !info.Mode().IsRegular() || info.Mode().Perm()&0o111 == 0:
		return info.Mode(), ErrNotExecutable
	}
	// The mode bits may allow others but not this account: access(2) asks the kernel.
	if err := unix.Access(file, unix.X_OK); err != nil {
		return info.Mode(), fs.ErrPermission
	}
	return info.Mode(), nil
}

// PATH is the PATH of a process started with env: the last one, as exec.Cmd keeps the
// last of a repeated name.
func PATH(env []string) string {
	path := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	return path
}

// SearchPath is the PATH of a replica whose function's env is env, started by a daemon
// whose PATH is daemonPATH: the function's own, else the daemon's, else DefaultPATH.
func SearchPath(env map[string]string, daemonPATH string) string {
	if p, ok := env["PATH"]; ok {
		return p
	}
	if daemonPATH != "" {
		return daemonPATH
	}
	return DefaultPATH
}

// Check reports whether a replica started in workdir with the PATH path can run prog: the
// workdir exists, and prog resolves there to a file that may be executed. Asked by another
// account than the replica's (the daemon as root), it answers for the asking account.
func Check(workdir, prog, path string) error {
	switch info, err := os.Stat(workdir); {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("workdir %s does not exist", workdir)
	case err != nil:
		return fmt.Errorf("workdir %s: %w", workdir, err)
	case !info.IsDir():
		return fmt.Errorf("workdir %s is not a directory", workdir)
	}
	_, err := Find(prog, workdir, path)
	return err
}
