package supervisor

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"

	progfile "faasd/program"
)

// The spawn shim serves a daemon that is not root. Such a daemon cannot give one thread a
// user namespace, so it starts its own binary in new user and mount namespaces; the shim
// mounts the replica's directories, drops the namespace's privileges and execs the
// workload. A root daemon never needs it (see spawner_linux.go).

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
}

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
	path, err := progfile.Resolve(spec.Argv[0], spec.Dir, os.Environ())
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
		if err := mountSecrets(spec.Secrets); err != nil {
			return fmt.Errorf("spawn shim: %w", err)
		}
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

// mountSecrets binds a replica's copy of its secrets read-only on SecretsMount.
func mountSecrets(dir string) error {
	if err := unix.Mount(dir, SecretsMount, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("mount secrets on %s: %w", SecretsMount, err)
	}
	// A read-only bind needs a second, remounting call.
	_ = unix.Mount("", SecretsMount, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, "")
	return nil
}
