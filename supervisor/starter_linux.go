package supervisor

// forkStarter is the daemon's starter: it builds the command of a launch, puts it in a
// group of its own, connects its output and forks it from a spawning thread.
type forkStarter struct {
	thread *spawner
	exe    string    // the faasd binary, for the spawn shim
	iso    isolation // how a launch gets its private /tmp
	// groups makes the group each program runs in (group.go), for replicas and
	// services alike; nil: process groups.
	groups *containment
}

// newForkStarter returns a starter with a spawning thread of its own. Replicas and services
// must not share one: the replicas' thread stays in the mount namespace of the last
// replica it started, and a service sees the host's /tmp.
func newForkStarter(exe string) *forkStarter {
	return &forkStarter{thread: newSpawner(), exe: exe, iso: isolateTmpdir}
}

func (st *forkStarter) start(l *launch) (running, error) {
	cmd, view, err := command(st.iso, st.exe, l)
	if err != nil {
		return running{}, err
	}
	g, err := st.groups.newGroup(l)
	if err != nil {
		return running{}, err
	}
	out, err := openPipes(cmd)
	if err != nil {
		g.remove()
		return running{}, err
	}
	err = st.thread.start(cmd, view, g)
	// The child holds the write ends now; ours must go, or the readers never see EOF.
	out.closeWriters()
	if err != nil {
		out.closeReaders()
		g.remove()
		return running{}, err
	}
	g.started(cmd.Process.Pid)
	return running{
		pid:    cmd.Process.Pid,
		group:  g,
		wait:   cmd.Wait,
		output: out.pump(l.output, l.log),
	}, nil
}
