package supervisor

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// isolation is how a replica gets its private /tmp.
type isolation int

const (
	// isolateMountNS: the daemon is root; each replica gets a mount namespace in which
	// its own directory is mounted on /tmp, like systemd's PrivateTmp=.
	isolateMountNS isolation = iota
	// isolateUserNS: an unprivileged daemon creates a user namespace owning a mount
	// namespace, with the same effect.
	isolateUserNS
	// isolateTmpdir: no namespaces here; TMPDIR points at the replica's directory, which
	// only helps programs that honour TMPDIR.
	isolateTmpdir
)

func (i isolation) String() string {
	return [...]string{"mount namespace", "user and mount namespace", "TMPDIR only"}[i]
}

// ShimArg is the hidden first argument that makes the faasd binary act as the spawn shim:
// Go cannot run code between fork and exec, so the daemon starts itself in the new
// namespaces, and the shim mounts, drops privileges and execs the workload.
const ShimArg = "__faasd_spawn_shim"

const shimEnv = "FAASD_SHIM_SPEC"

// shimSpec is what the daemon tells the shim, as JSON in an environment variable that the
// shim removes before exec.
type shimSpec struct {
	Tmp     string   `json:"tmp"`     // host directory to mount on /tmp
	Secrets string   `json:"secrets"` // host directory to mount on /var/openfaas/secrets, if any
	Dir     string   `json:"dir"`
	Argv    []string `json:"argv"`
	SetUser bool     `json:"set_user"`
	UID     int      `json:"uid"`
	GID     int      `json:"gid"`
	Groups  []int    `json:"groups"`
	Parent  int      `json:"parent"` // pid of the daemon; the shim dies if it is gone
	Probe   bool     `json:"probe"`  // mount and exit: tells the daemon namespaces work
}

// SecretsMount is where a function sees its secrets.
const SecretsMount = "/var/openfaas/secrets"

// Shim runs in the child process started with ShimArg. It only returns on failure.
func Shim() error {
	// Parent-death signal and exec must happen on the same thread.
	runtime.LockOSThread()
	var spec shimSpec
	if err := json.Unmarshal([]byte(os.Getenv(shimEnv)), &spec); err != nil {
		return fmt.Errorf("spawn shim: bad spec: %w", err)
	}
	os.Unsetenv(shimEnv)
	// Enter the workdir and find the program before /tmp is replaced: a project under the
	// host's /tmp keeps its working directory, which the mount does not take away.
	if err := os.Chdir(spec.Dir); err != nil {
		return fmt.Errorf("spawn shim: workdir: %w", err)
	}
	path, err := exec.LookPath(spec.Argv[0])
	if err != nil {
		return fmt.Errorf("spawn shim: %w", err)
	}
	if abs, _ := filepath.Abs(path); strings.HasPrefix(abs, "/tmp/") {
		return fmt.Errorf("spawn shim: %s is under /tmp, which a replica sees as its own private directory: install the program elsewhere", abs)
	}
	// Keep our mounts out of the host's namespace: systemd makes / shared by default.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("spawn shim: make mounts private: %w", err)
	}
	if err := unix.Mount(spec.Tmp, "/tmp", "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("spawn shim: mount %s on /tmp: %w", spec.Tmp, err)
	}
	if spec.Secrets != "" {
		if err := unix.Mount(spec.Secrets, SecretsMount, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("spawn shim: mount secrets on %s: %w", SecretsMount, err)
		}
		// A read-only bind needs a second, remounting call.
		_ = unix.Mount("", SecretsMount, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, "")
	}
	if spec.Probe {
		os.Exit(0)
	}
	if spec.SetUser {
		if err := unix.Setgroups(spec.Groups); err != nil {
			return fmt.Errorf("spawn shim: setgroups: %w", err)
		}
		if err := unix.Setresgid(spec.GID, spec.GID, spec.GID); err != nil {
			return fmt.Errorf("spawn shim: setgid %d: %w", spec.GID, err)
		}
		if err := unix.Setresuid(spec.UID, spec.UID, spec.UID); err != nil {
			return fmt.Errorf("spawn shim: setuid %d: %w", spec.UID, err)
		}
	}
	// A change of credentials clears the parent-death signal, so set it again, then make
	// sure the daemon did not die before we did.
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		return fmt.Errorf("spawn shim: pdeathsig: %w", err)
	}
	if os.Getppid() != spec.Parent {
		os.Exit(1)
	}
	return fmt.Errorf("spawn shim: exec %s: %w", path, unix.Exec(path, spec.Argv, os.Environ()))
}

// spawner starts processes from one goroutine locked to its OS thread. The kernel sends
// the parent-death signal when the thread that forked a child exits, not the process:
// Go may retire any other thread at any time, this one lives as long as the daemon.
type spawner struct {
	reqs chan spawnReq
}

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

func newSpawner() *spawner {
	s := &spawner{reqs: make(chan spawnReq)}
	go func() {
		runtime.LockOSThread()
		for r := range s.reqs {
			r.done <- r.cmd.Start()
		}
	}()
	return s
}

func (s *spawner) start(cmd *exec.Cmd) error {
	done := make(chan error, 1)
	s.reqs <- spawnReq{cmd: cmd, done: done}
	return <-done
}

// credentials is the account a replica runs as.
type credentials struct {
	set    bool // false: keep the daemon's own
	uid    int
	gid    int
	groups []int
	name   string
	home   string
}

// lookupUser resolves the user of a function. As root, the default is the unprivileged
// "nobody"; running functions as root takes an explicit user = "root".
func lookupUser(name string) (credentials, error) {
	if os.Geteuid() != 0 {
		if name != "" {
			if u, err := user.Current(); err == nil && u.Username != name {
				return credentials{}, fmt.Errorf("user %q: the daemon is not root, so functions run as %s", name, u.Username)
			}
		}
		return credentials{}, nil
	}
	if name == "" {
		name = "nobody"
	}
	u, err := user.Lookup(name)
	if err != nil {
		return credentials{}, fmt.Errorf("user %q: %w", name, err)
	}
	c := credentials{set: true, name: u.Username, home: u.HomeDir}
	if c.uid, err = strconv.Atoi(u.Uid); err != nil {
		return c, fmt.Errorf("user %q: uid %q: %w", name, u.Uid, err)
	}
	if c.gid, err = strconv.Atoi(u.Gid); err != nil {
		return c, fmt.Errorf("user %q: gid %q: %w", name, u.Gid, err)
	}
	gids, _ := u.GroupIds()
	for _, g := range gids {
		if n, err := strconv.Atoi(g); err == nil {
			c.groups = append(c.groups, n)
		}
	}
	return c, nil
}

// command builds the exec.Cmd of one replica for the isolation in use.
func command(iso isolation, exe string, spec shimSpec, env []string) (*exec.Cmd, error) {
	attr := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if iso == isolateTmpdir {
		path, err := lookPath(spec.Argv[0], spec.Dir, env)
		if err != nil {
			return nil, err
		}
		cmd := &exec.Cmd{Path: path, Args: spec.Argv, Dir: spec.Dir, Env: env, SysProcAttr: attr}
		if spec.SetUser {
			groups := make([]uint32, len(spec.Groups))
			for i, g := range spec.Groups {
				groups[i] = uint32(g)
			}
			attr.Credential = &syscall.Credential{Uid: uint32(spec.UID), Gid: uint32(spec.GID), Groups: groups}
		}
		return cmd, nil
	}
	js, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	attr.Cloneflags = syscall.CLONE_NEWNS
	if iso == isolateUserNS {
		attr.Cloneflags |= syscall.CLONE_NEWUSER
		uid, gid := os.Getuid(), os.Getgid()
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: uid, HostID: uid, Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: gid, HostID: gid, Size: 1}}
		attr.GidMappingsEnableSetgroups = false
	}
	return &exec.Cmd{
		Path:        exe,
		Args:        []string{exe, ShimArg},
		Dir:         "/",
		Env:         append(env, shimEnv+"="+string(js)),
		SysProcAttr: attr,
	}, nil
}

// lookPath resolves a program the way the shim does, for the TMPDIR fallback that runs
// it directly: relative to the workdir when it has a slash, else in the workload's PATH.
func lookPath(prog, dir string, env []string) (string, error) {
	if containsSlash(prog) {
		if prog[0] != '/' {
			prog = dir + "/" + prog
		}
		return prog, nil
	}
	for i := len(env) - 1; i >= 0; i-- {
		if len(env[i]) > 5 && env[i][:5] == "PATH=" {
			for _, d := range splitList(env[i][5:]) {
				p := d + "/" + prog
				if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
					return p, nil
				}
			}
			break
		}
	}
	return "", fmt.Errorf("%s: %w", prog, exec.ErrNotFound)
}

func containsSlash(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			return true
		}
	}
	return false
}

func splitList(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ':' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}

// probeIsolation finds the strongest isolation this daemon may use, by starting the shim
// once in probe mode.
func probeIsolation(sp *spawner, exe, dir string) (isolation, error) {
	candidates := []isolation{isolateUserNS}
	if os.Geteuid() == 0 {
		candidates = []isolation{isolateMountNS}
	}
	var errs []error
	for _, iso := range candidates {
		cmd, err := command(iso, exe, shimSpec{Tmp: dir, Dir: "/", Argv: []string{"true"}, Parent: os.Getpid(), Probe: true}, os.Environ())
		if err != nil {
			return isolateTmpdir, err
		}
		out := &limitedBuffer{max: 4096}
		cmd.Stderr = out
		if err := sp.start(cmd); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", iso, err))
			continue
		}
		if err := cmd.Wait(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w: %s", iso, err, out.String()))
			continue
		}
		return iso, nil
	}
	return isolateTmpdir, errors.Join(errs...)
}

type limitedBuffer struct {
	max int
	b   []byte
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - len(l.b); room > 0 {
		l.b = append(l.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string { return string(l.b) }
