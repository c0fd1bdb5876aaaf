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
	// isolateMountNS: the daemon is root; the spawning thread enters a fresh mount
	// namespace with the replica's directory mounted on /tmp (like systemd's
	// PrivateTmp=) and forks the replica there, which inherits it.
	isolateMountNS isolation = iota
	// isolateUserNS: an unprivileged daemon cannot give a single thread a user
	// namespace, so it starts the spawn shim in new user and mount namespaces, and the
	// shim mounts and execs the workload.
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
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("spawn shim: drop ambient capabilities: %w", err)
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
// The same thread is where replicas get their mount namespace: a locked thread may
// unshare its mount namespace and working directory without touching the rest of the
// daemon, and a child forked from it inherits both. That saves a re-exec per replica.
type spawner struct {
	reqs chan spawnReq
}

type spawnReq struct {
	cmd  *exec.Cmd
	ns   *privateMounts // nil: start in the daemon's namespace
	done chan error
}

// privateMounts is the view of the file system a replica gets.
type privateMounts struct {
	dir     string // working directory, entered before /tmp is replaced
	tmp     string // mounted on /tmp
	secrets string // mounted read-only on SecretsMount, if set
}

func newSpawner() *spawner {
	s := &spawner{reqs: make(chan spawnReq)}
	go s.loop()
	return s
}

func (s *spawner) loop() {
	runtime.LockOSThread()
	if unix.Gettid() == unix.Getpid() {
		// The process's main thread: /proc/PID shows its working directory and mount
		// namespace as the daemon's own, so they must not become a replica's. Keep it
		// locked to this goroutine, idle, and spawn from another thread.
		go s.loop()
		select {}
	}
	var t nsThread
	for r := range s.reqs {
		if r.ns != nil {
			if err := t.enter(r.ns); err != nil {
				r.done <- err
				continue
			}
		}
		r.done <- r.cmd.Start()
	}
}

func (s *spawner) start(cmd *exec.Cmd, ns *privateMounts) error {
	done := make(chan error, 1)
	s.reqs <- spawnReq{cmd: cmd, ns: ns, done: done}
	return <-done
}

// nsThread is the mount-namespace state of the spawning thread.
type nsThread struct {
	private    bool // mount propagation made private, once
	tmpMounted bool // the current namespace has a replica's /tmp on top
	secMounted bool
}

// enter gives the thread a fresh mount namespace laid out for one replica.
func (t *nsThread) enter(m *privateMounts) error {
	if err := unix.Unshare(unix.CLONE_NEWNS | unix.CLONE_FS); err != nil {
		return fmt.Errorf("unshare mount namespace: %w", err)
	}
	if !t.private {
		// Keep our mounts out of the host's namespace: systemd makes / shared.
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			return fmt.Errorf("make mounts private: %w", err)
		}
		t.private = true
	}
	// The copy carries the previous replica's mounts; lift them, or every namespace
	// would carry one more than the last.
	if t.tmpMounted {
		if err := unix.Unmount("/tmp", unix.MNT_DETACH); err != nil {
			return fmt.Errorf("unmount previous /tmp: %w", err)
		}
		t.tmpMounted = false
	}
	if t.secMounted {
		if err := unix.Unmount(SecretsMount, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("unmount previous secrets: %w", err)
		}
		t.secMounted = false
	}
	// Enter the workdir before /tmp is replaced, so that a project under the host's /tmp
	// keeps its working directory.
	if err := unix.Chdir(m.dir); err != nil {
		return fmt.Errorf("workdir: %w", err)
	}
	if err := unix.Mount(m.tmp, "/tmp", "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("mount %s on /tmp: %w", m.tmp, err)
	}
	t.tmpMounted = true
	if m.secrets != "" {
		if err := unix.Mount(m.secrets, SecretsMount, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("mount secrets on %s: %w", SecretsMount, err)
		}
		t.secMounted = true
		// A read-only bind needs a second, remounting call.
		_ = unix.Mount("", SecretsMount, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, "")
	}
	return nil
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

// command builds the exec.Cmd of one replica for the isolation in use, and the mounts the
// spawner must set up for it.
func command(iso isolation, exe string, spec shimSpec, env []string) (*exec.Cmd, *privateMounts, error) {
	attr := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if iso == isolateUserNS {
		js, err := json.Marshal(spec)
		if err != nil {
			return nil, nil, err
		}
		uid, gid := os.Getuid(), os.Getgid()
		attr.Cloneflags = syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: uid, HostID: uid, Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: gid, HostID: gid, Size: 1}}
		attr.GidMappingsEnableSetgroups = false
		// The shim keeps its own uid inside the namespace, so exec would drop the
		// capabilities the namespace gave it; an ambient CAP_SYS_ADMIN survives exec
		// for the mounts, and the shim clears it before exec'ing the workload.
		attr.AmbientCaps = []uintptr{unix.CAP_SYS_ADMIN}
		return &exec.Cmd{
			Path:        exe,
			Args:        []string{exe, ShimArg},
			Dir:         "/",
			Env:         append(env, shimEnv+"="+string(js)),
			SysProcAttr: attr,
		}, nil, nil
	}
	path, err := lookPath(spec.Argv[0], spec.Dir, env)
	if err != nil {
		return nil, nil, err
	}
	if strings.HasPrefix(path, "/tmp/") && iso == isolateMountNS {
		return nil, nil, fmt.Errorf("%s is under /tmp, which a replica sees as its own private directory: install the program elsewhere", path)
	}
	if spec.SetUser {
		groups := make([]uint32, len(spec.Groups))
		for i, g := range spec.Groups {
			groups[i] = uint32(g)
		}
		attr.Credential = &syscall.Credential{Uid: uint32(spec.UID), Gid: uint32(spec.GID), Groups: groups}
	}
	cmd := &exec.Cmd{Path: path, Args: spec.Argv, Env: env, SysProcAttr: attr}
	if iso == isolateTmpdir {
		cmd.Dir = spec.Dir
		return cmd, nil, nil
	}
	// The spawning thread's working directory is the replica's.
	return cmd, &privateMounts{dir: spec.Dir, tmp: spec.Tmp, secrets: spec.Secrets}, nil
}

// lookPath resolves a program the way a shell in the workdir would: relative to the
// workdir when it has a slash, else in the workload's PATH.
func lookPath(prog, dir string, env []string) (string, error) {
	if strings.Contains(prog, "/") {
		if !filepath.IsAbs(prog) {
			prog = filepath.Join(dir, prog)
		}
		return prog, nil
	}
	path := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, d := range filepath.SplitList(path) {
		p := filepath.Join(d, prog)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: %w in PATH", prog, exec.ErrNotFound)
}

// probeIsolation finds the strongest isolation this daemon may use by starting `true`
// once in it.
func probeIsolation(sp *spawner, exe, dir string) (isolation, error) {
	candidates := []isolation{isolateUserNS}
	if os.Geteuid() == 0 {
		candidates = []isolation{isolateMountNS}
	}
	var errs []error
	for _, iso := range candidates {
		spec := shimSpec{Tmp: dir, Dir: "/", Argv: []string{"true"}, Parent: os.Getpid(), Probe: true}
		cmd, ns, err := command(iso, exe, spec, []string{"PATH=/usr/local/bin:/usr/bin:/bin"})
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", iso, err))
			continue
		}
		out := &limitedBuffer{max: 4096}
		cmd.Stderr = out
		if err := sp.start(cmd, ns); err != nil {
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

// ownerOf returns the credentials that own a file.
func ownerOf(fi os.FileInfo) credentials {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || os.Geteuid() != 0 {
		return credentials{}
	}
	return credentials{set: true, uid: int(st.Uid), gid: int(st.Gid)}
}
