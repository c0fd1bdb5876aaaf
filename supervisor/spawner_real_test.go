package supervisor

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"faasd/internal/testkit"
)

// Replicas forked one after another from the spawning thread each see their own /tmp,
// mounted once: no namespace carries an earlier replica's mounts, nor those of a launch
// that failed half-way, and neither does the host's.
func TestEachReplicaSeesOnlyItsOwnTmp(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mount namespaces need root here")
	}
	st := newForkStarter(os.Args[0])
	st.iso = isolateMountNS
	procs := newProcesses(st)
	hostTmp := tmpMounts(t, "self")
	for i := range 4 {
		tmp := testkit.Dir(t)
		// Between good launches, one that fails once its /tmp is mounted (its secrets
		// are missing) and one whose workdir is missing.
		bad, _ := realLaunch(t, "exec sleep 1000", &lineBuffer{max: 100})
		bad.tmp = tmp
		if i%2 == 0 {
			bad.secrets = filepath.Join(tmp, "missing")
		} else {
			bad.dir = filepath.Join(tmp, "missing")
		}
		if _, err := procs.start(bad); err == nil {
			t.Fatalf("launch %d started without its secrets or workdir", i)
		}
		l, _ := realLaunch(t, "exec sleep 1000", &lineBuffer{max: 100})
		l.tmp = tmp
		p, err := procs.start(l)
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		mounts := tmpMounts(t, strconv.Itoa(p.pid))
		if len(mounts) != len(hostTmp)+1 || !strings.HasSuffix(mounts[len(mounts)-1], filepath.Base(tmp)) {
			t.Errorf("replica %d sees on /tmp %q, want the host's %q and then %s", i, mounts, hostTmp, tmp)
		}
		p.stop(5 * time.Second)
	}
	if got := tmpMounts(t, "self"); len(got) != len(hostTmp) {
		t.Errorf("the daemon sees on /tmp %q, was %q", got, hostTmp)
	}
}

// tmpMounts lists the roots of what is mounted on /tmp in the mount namespace of pid
// ("self": this process), bottom first.
func tmpMounts(t *testing.T, pid string) []string {
	t.Helper()
	data, err := os.ReadFile("/proc/" + pid + "/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var roots []string
	for line := range strings.SplitSeq(string(data), "\n") {
		// 42 66 254:0 /var/tmp/x/run/hello/1/tmp /tmp rw,relatime - ext4 /dev/vda rw
		if f := strings.Fields(line); len(f) > 4 && f[4] == "/tmp" {
			roots = append(roots, f[3])
		}
	}
	return roots
}
