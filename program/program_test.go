package program

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// tree makes a working directory with a program in it and in a bin folder, a file that is
// not executable, and a directory.
func tree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, mode := range map[string]fs.FileMode{"server": 0o755, "bin/tool": 0o755, "notes.txt": 0o644, "bin/plain": 0o644} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestFindResolvesAsAReplicaWill(t *testing.T) {
	dir := tree(t)
	bin := filepath.Join(dir, "bin")
	other := t.TempDir() // an executable "plain", where bin has a plain file of that name
	if err := os.WriteFile(filepath.Join(other, "plain"), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, prog, path string
		want             string // the file, or the error's text
		err              error
	}{
		{"relative to the workdir", "./server", "", filepath.Join(dir, "server"), nil},
		{"a relative path without a dot", "bin/tool", "", filepath.Join(bin, "tool"), nil},
		{"absolute", filepath.Join(dir, "server"), "", filepath.Join(dir, "server"), nil},
		{"a bare name in PATH", "tool", "/nonexistent:" + bin, filepath.Join(bin, "tool"), nil},
		{"a relative PATH entry is the workdir's", "tool", "bin", filepath.Join(bin, "tool"), nil},
		{"a bare name is never the workdir's own file", "server", bin, "program server: not found in any directory of PATH (" + bin + ")", fs.ErrNotExist},
		{"a bare name nowhere", "sha5sum", "/usr/local/bin:/usr/bin:/bin", "program sha5sum: not found in any directory of PATH (/usr/local/bin:/usr/bin:/bin)", fs.ErrNotExist},
		{"a missing relative path", "./serve", "", "program ./serve: " + filepath.Join(dir, "serve") + " does not exist (relative to the workdir " + dir + ")", fs.ErrNotExist},
		{"a missing absolute path", "/nonexistent/handler", "", "program /nonexistent/handler: does not exist", fs.ErrNotExist},
		{"not executable", "./notes.txt", "", "program ./notes.txt: " + filepath.Join(dir, "notes.txt") + " is not executable (-rw-r--r--) (relative to the workdir " + dir + ")", ErrNotExecutable},
		{"a directory", "./sub", "", "program ./sub: " + filepath.Join(dir, "sub") + " is a directory (relative to the workdir " + dir + ")", ErrDirectory},
		{"in PATH but not executable", "plain", bin, "program plain: in PATH (" + bin + "), " + filepath.Join(bin, "plain") + " is not executable (-rw-r--r--)", ErrNotExecutable},
		{"an executable later in PATH wins over a plain file", "plain", bin + ":" + other, filepath.Join(other, "plain"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Find(tc.prog, dir, tc.path)
			if tc.err == nil {
				if err != nil || got != tc.want {
					t.Fatalf("Find = %q, %v; want %q", got, err, tc.want)
				}
				return
			}
			if got != "" || err == nil || err.Error() != tc.want || !errors.Is(err, tc.err) {
				t.Fatalf("Find = %q, %v\nwant the error %q (%v)", got, err, tc.want, tc.err)
			}
			if strings.Contains(err.Error(), "$PATH") {
				t.Errorf("the error speaks of $PATH: %v", err)
			}
		})
	}
}

func TestResolveUsesTheLastPATHOfTheEnvironment(t *testing.T) {
	dir := tree(t)
	env := []string{"PATH=/nonexistent", "HOME=/tmp", "PATH=" + filepath.Join(dir, "bin")}
	if got, err := Resolve("tool", dir, env); err != nil || got != filepath.Join(dir, "bin", "tool") {
		t.Fatalf("Resolve = %q, %v", got, err)
	}
	if _, err := Resolve("tool", dir, []string{"HOME=/tmp"}); err == nil {
		t.Fatal("a bare name resolved without any PATH")
	}
}

func TestCheckLooksWhereTheFunctionsReplicasLook(t *testing.T) {
	dir := tree(t)
	bin := filepath.Join(dir, "bin")
	for _, tc := range []struct {
		name       string
		workdir    string
		prog       string
		env        map[string]string
		daemonPATH string
		want       string // "" for no error
	}{
		{"a program in the workdir", dir, "./server", nil, "", ""},
		{"a program in the daemon's PATH", dir, "tool", nil, bin, ""},
		{"a program in the default PATH", dir, "sh", nil, "", ""},
		{"the function's own PATH wins", dir, "tool", map[string]string{"PATH": "/usr/bin:/bin"}, bin,
			"program tool: not found in any directory of PATH (/usr/bin:/bin)"},
		{"a command that does not exist", dir, "sha5sum", nil, "", "program sha5sum: not found in any directory of PATH (" + DefaultPATH + ")"},
		{"a workdir that does not exist", filepath.Join(dir, "nope"), "./server", nil, "", "workdir " + filepath.Join(dir, "nope") + " does not exist"},
		{"a workdir that is a file", filepath.Join(dir, "server"), "sh", nil, "", "workdir " + filepath.Join(dir, "server") + " is not a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(tc.workdir, tc.prog, SearchPath(tc.env, tc.daemonPATH))
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || err.Error() != tc.want) {
				t.Fatalf("Check = %v, want %q", err, tc.want)
			}
		})
	}
}

// The account that asks is the one answered for: a replica runs as an unprivileged user,
// for whom a file may be out of reach or not executable while root may run it. The test
// binary runs itself as nobody to ask.
func TestFindAnswersForTheAccountThatAsks(t *testing.T) {
	if dir := os.Getenv("PROGRAM_TEST_DIR"); dir != "" {
		for _, q := range [][2]string{{"./private/tool", ""}, {"tool", "private"}, {"./owner-only", ""}, {"./shared", ""}} {
			_, err := Find(q[0], dir, q[1])
			fmt.Printf("%s: %v\n", q[0], err)
		}
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run as nobody")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip(err)
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	// Under /var/tmp, which nobody may search, unlike the test's own temporary directories.
	dir, err := os.MkdirTemp("/var/tmp", "program-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	files := map[string]fs.FileMode{"private/tool": 0o755, "owner-only": 0o744, "shared": 0o755}
	for name, mode := range files {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o700)
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	self, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "program.test")
	if err := os.WriteFile(exe, self, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestFindAnswersForTheAccountThatAsks$")
	cmd.Env = []string{"PROGRAM_TEST_DIR=" + dir}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("as nobody: %v\n%s", err, out)
	}
	for _, want := range []string{
		"./private/tool: program ./private/tool: " + filepath.Join(dir, "private/tool") + " cannot be reached by uid " + nobody.Uid + ": permission denied (relative to the workdir " + dir + ")",
		"tool: program tool: not found in any directory of PATH (private)",
		"./owner-only: program ./owner-only: " + filepath.Join(dir, "owner-only") + " cannot be executed by uid " + nobody.Uid + ": permission denied (relative to the workdir " + dir + ")",
		"./shared: <nil>",
	} {
		if !strings.Contains(string(out), want+"\n") {
			t.Errorf("as nobody, no %q in:\n%s", want, out)
		}
	}
}
