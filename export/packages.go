package export

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// PackageFinder tells which Debian package installs a program. faasd ran the function's
// program from this machine, so on a Debian host the package that put it here is the best
// guess of what the image must install.
type PackageFinder interface {
	// Package names the package that installs program (an absolute path), and whether
	// every Debian image has it already (essential and required packages do).
	Package(program string) (pkg string, inBase bool, err error)
}

// errNoPackage means no package owns the program: it was installed by hand.
var errNoPackage = errors.New("no Debian package installs it")

// dpkg asks the host's package database.
type dpkg struct{}

func (dpkg) Package(program string) (string, bool, error) {
	// A merged /usr lists files under either name, so try the path as given, where its
	// links lead, and its twin across the /bin → /usr/bin link.
	candidates := []string{program}
	if real, err := filepath.EvalSymlinks(program); err == nil && real != program {
		candidates = append(candidates, real)
	}
	for _, p := range append([]string(nil), candidates...) {
		if rest, ok := strings.CutPrefix(p, "/usr"); ok {
			candidates = append(candidates, rest)
		} else {
			candidates = append(candidates, "/usr"+p)
		}
	}
	for _, p := range candidates {
		out, err := exec.Command("dpkg-query", "-S", p).Output()
		if err != nil {
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				continue // not this name
			}
			return "", false, fmt.Errorf("dpkg-query: %w", err)
		}
		// "coreutils: /usr/bin/sha512sum"; a diversion adds lines, the owner comes first.
		pkg, _, _ := strings.Cut(strings.SplitN(string(out), "\n", 2)[0], ": ")
		pkg, _, _ = strings.Cut(pkg, ":") // the architecture, "libc-bin:amd64"
		if pkg == "" || strings.Contains(pkg, ",") {
			continue // a directory shared by several packages, not a program
		}
		info, err := exec.Command("dpkg-query", "-W", "-f", "${Essential} ${Priority}", pkg).Output()
		if err != nil {
			return pkg, false, nil
		}
		essential, priority, _ := strings.Cut(strings.TrimSpace(string(info)), " ")
		return pkg, essential == "yes" || priority == "required", nil
	}
	return "", false, errNoPackage
}

// hostProgram is the absolute path of the program a command runs on this machine: as
// written when absolute, looked up in PATH when it is a bare name; "" when it is a path
// relative to the function's folder, which is the function's own file.
func hostProgram(prog string) string {
	switch {
	case filepath.IsAbs(prog):
		return prog
	case strings.Contains(prog, "/"):
		return ""
	}
	if p, err := exec.LookPath(prog); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			return abs
		}
	}
	return ""
}

// shebang returns the interpreter a script names on its first line ("#!/usr/bin/env
// python3" → "python3", "#!/bin/bash" → "/bin/bash"), or "".
func shebang(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	buf := make([]byte, 256)
	n, _ := f.Read(buf)
	line, _, _ := strings.Cut(string(buf[:n]), "\n")
	rest, ok := strings.CutPrefix(line, "#!")
	if !ok {
		return ""
	}
	fields := strings.Fields(rest)
	if len(fields) == 0 {
		return ""
	}
	if filepath.Base(fields[0]) == "env" && len(fields) > 1 {
		for _, f := range fields[1:] {
			if !strings.HasPrefix(f, "-") {
				return f
			}
		}
		return ""
	}
	return fields[0]
}
