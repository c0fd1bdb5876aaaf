package supervisor

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
// Go cannot run code between fork and exec, so an unprivileged daemon starts itself in
// new namespaces, and the shim mounts, drops privileges and execs the workload.
const ShimArg = "__faasd_spawn_shim"
