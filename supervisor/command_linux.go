package supervisor

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	progfile "faasd/program"
)

// command builds the exec.Cmd of a launch, and the view of the file system the spawning
// thread must enter before it forks: a launch with a private /tmp gets it from the
// spawning thread as root (iso isolateMountNS) or from the spawn shim otherwise.
func command(iso isolation, exe string, l *launch) (*exec.Cmd, *privateMounts, error) {
	// The parent-death signal is the daemon's promise that a SIGKILLed daemon leaves no
	// process behind; the spawning thread lives as long as the daemon for it.
	attr := &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if l.tmp != "" && iso == isolateUserNS {
		return shimCommand(exe, l, attr)
	}
	path, err := progfile.Resolve(l.argv[0], l.dir, l.env)
	if err != nil {
		return nil, nil, err
	}
	if l.tmp != "" && strings.HasPrefix(path, "/tmp/") {
		return nil, nil, fmt.Errorf("%s is under /tmp, which a replica sees as its own private directory: install the program elsewhere", path)
	}
	if c := l.creds; c.set {
		groups := make([]uint32, len(c.groups))
		for i, g := range c.groups {
			groups[i] = uint32(g)
		}
		attr.Credential = &syscall.Credential{Uid: uint32(c.uid), Gid: uint32(c.gid), Groups: groups}
	}
	cmd := &exec.Cmd{Path: path, Args: l.argv, Env: l.env, SysProcAttr: attr}
	if l.tmp == "" {
		cmd.Dir = l.dir
		return cmd, nil, nil
	}
	// The spawning thread's working directory is the replica's.
	return cmd, &privateMounts{dir: l.dir, tmp: l.tmp, secrets: l.secrets}, nil
}

// shimCommand starts the spawn shim in new user and mount namespaces; it mounts the
// launch's directories and execs its program (shim_linux.go).
func shimCommand(exe string, l *launch, attr *syscall.SysProcAttr) (*exec.Cmd, *privateMounts, error) {
	c := l.creds
	js, err := json.Marshal(shimSpec{
		Tmp: l.tmp, Secrets: l.secrets, Dir: l.dir, Argv: l.argv, Parent: os.Getpid(),
		SetUser: c.set, UID: c.uid, GID: c.gid, Groups: c.groups,
	})
	if err != nil {
		return nil, nil, err
	}
	uid, gid := os.Getuid(), os.Getgid()
	attr.Cloneflags = syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS
	attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: uid, HostID: uid, Size: 1}}
	attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: gid, HostID: gid, Size: 1}}
	attr.GidMappingsEnableSetgroups = false
	// The shim keeps its own uid inside the namespace, so exec would drop the
	// capabilities the namespace gave it; an ambient CAP_SYS_ADMIN survives exec for the
	// mounts, and the shim clears it before exec'ing the workload.
	attr.AmbientCaps = []uintptr{unix.CAP_SYS_ADMIN}
	return &exec.Cmd{
		Path:        exe,
		Args:        []string{exe, ShimArg},
		Dir:         "/",
		Env:         append(l.env, shimEnv+"="+string(js)),
		SysProcAttr: attr,
	}, nil, nil
}
