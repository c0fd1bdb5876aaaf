package supervisor

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"faasd/cgroup"
	"faasd/config"
	"faasd/internal/testkit"
)

// BenchmarkReplicaStart is what containment adds to a cold start: a replica's program
// forked in a mount namespace with its private /tmp, in a process group, then in a cgroup
// of each hierarchy with limits (made, joined and, after the stop, removed). Only the
// start is timed, until the program runs (its exit status is read after the stop); the
// stop is not on a request's path. The cases run side by side: read their ratios.
func BenchmarkReplicaStart(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("cgroups need root")
	}
	limits := config.Limits{Memory: config.Memory{Bytes: 128 << 20}, CPU: config.CPU{Millis: 500}, Pids: config.DefaultPids}
	cases := []struct {
		name string
		mode cgroup.Mode
	}{{"process-group", cgroup.None}, {"cgroup-v1", cgroup.V1}, {"cgroup-v2", cgroup.V2}}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			m, err := cgroup.Open(context.Background(), cgroup.Options{StateDir: testkit.Dir(b), Mode: c.mode})
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close(context.Background())
			if c.mode != cgroup.None && !m.Enabled() {
				b.Skipf("%s: %s", c.mode, m.Status().Warning)
			}
			st := newForkStarter(os.Args[0])
			st.iso = isolateMountNS
			st.groups = newContainment(m, discard)
			procs := newProcesses(st)
			tmp := testkit.Dir(b)
			i := 0
			for b.Loop() {
				i++
				l := &launch{
					argv: []string{"sleep", "1000"}, dir: "/", env: []string{"PATH=" + defaultPath}, tmp: tmp,
					name:   groupName{kind: cgroup.Functions, unit: "bench", instance: strconv.Itoa(i)},
					limits: limits, output: &lineBuffer{max: 100}, log: discard,
				}
				p, err := procs.start(l)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				p.stop(5 * time.Second)
				b.StartTimer()
			}
		})
	}
}
