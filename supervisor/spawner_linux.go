package supervisor

import (
	"fmt"
	"os/exec"
	"runtime"

	"golang.org/x/sys/unix"
)

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
	cmd   *exec.Cmd
	view  *privateMounts // nil: start in the daemon's namespace
	group group          // the child starts in it
	done  chan error
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
		r.done <- t.spawn(r)
	}
}

// start starts cmd in group from the spawning thread, inside view when there is one.
func (s *spawner) start(cmd *exec.Cmd, view *privateMounts, g group) error {
	done := make(chan error, 1)
	s.reqs <- spawnReq{cmd: cmd, view: view, group: g, done: done}
	return <-done
}

// spawn forks one child: in the replica's mount namespace, then in its group. Joining
// last keeps the thread's visit to the group (cgroup v1 places threads) as short as
// the fork itself.
func (t *nsThread) spawn(r spawnReq) error {
	if r.view != nil {
		// Back to base however far enter got: a half-built namespace must not be the
		// next replica's starting point.
		defer t.leave()
		if err := t.enter(r.view); err != nil {
			return err
		}
	}
	release, err := r.group.join(r.cmd.SysProcAttr)
	if err != nil {
		return err
	}
	defer release()
	return r.cmd.Start()
}

// nsThread is the mount-namespace state of the spawning thread. Between spawns the
// thread rests in a namespace of its own that carries no replica's mounts (base); each
// replica's namespace is a fresh copy of it with the replica's mounts on top. Lifting
// the previous replica's mounts off a copy instead would cost a lazy unmount per start,
// which waits for the kernel's RCU grace period: most of a millisecond of every cold
// start.
type nsThread struct {
	base    int   // the namespace the thread rests in, once open
	hasBase bool  // base is open
	lost    error // the thread could not return to base: it must not spawn until it does
}

// enter gives the thread a fresh mount namespace laid out for one replica.
func (t *nsThread) enter(m *privateMounts) error {
	if t.lost != nil {
		return t.lost
	}
	if !t.hasBase {
		if err := t.openBase(); err != nil {
			return err
		}
	}
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("unshare mount namespace: %w", err)
	}
	// Enter the workdir before /tmp is replaced, so that a project under the host's /tmp
	// keeps its working directory.
	if err := unix.Chdir(m.dir); err != nil {
		return fmt.Errorf("workdir: %w", err)
	}
	if err := unix.Mount(m.tmp, "/tmp", "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("mount %s on /tmp: %w", m.tmp, err)
	}
	if m.secrets != "" {
		if err := mountSecrets(m.secrets); err != nil {
			return err
		}
	}
	return nil
}

// openBase moves the thread into a namespace of its own, with the daemon's mounts made
// private (systemd makes / shared: replicas' mounts must not reach the host), and keeps
// it as the base.
func (t *nsThread) openBase() error {
	if err := unix.Unshare(unix.CLONE_NEWNS | unix.CLONE_FS); err != nil {
		return fmt.Errorf("unshare mount namespace: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	fd, err := unix.Open("/proc/thread-self/ns/mnt", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("keep the spawning mount namespace: %w", err)
	}
	t.base, t.hasBase = fd, true
	return nil
}

// leave returns the thread to base once the replica has its own reference to the
// namespace it was forked in (or the fork failed and nothing does).
func (t *nsThread) leave() {
	if !t.hasBase {
		return
	}
	t.lost = nil
	if err := unix.Setns(t.base, unix.CLONE_NEWNS); err != nil {
		t.lost = fmt.Errorf("return the spawning thread to its mount namespace: %w", err)
	}
}
