package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"faasd/api"
	"faasd/internal/testkit"
)

// functionStatus reads GET /system/function/NAME.
func functionStatus(t *testing.T, d *testkit.Daemon, name string) api.FunctionStatus {
	t.Helper()
	code, body := d.API("GET", "/system/function/"+name, "")
	if code != 200 {
		t.Fatalf("GET /system/function/%s: %d %s", name, code, body)
	}
	var st api.FunctionStatus
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
	return st
}

// containment reads what /system/info says of the cgroups.
func containment(t *testing.T, d *testkit.Daemon) api.Containment {
	t.Helper()
	code, body := d.API("GET", "/system/info", "")
	var info api.Info
	if err := json.Unmarshal([]byte(body), &info); code != 200 || err != nil || info.Containment == nil {
		t.Fatalf("GET /system/info: %d %s (%v)", code, body, err)
	}
	return *info.Containment
}

// cgroupFile reads a control file of the cgroup a process is in: in the hierarchy of a
// v1 controller, or ("" for controller) in the v2 hierarchy mounted alone.
func cgroupFile(t *testing.T, pid int, controller, file string) string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 && parts[1] == controller {
			value, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", controller, parts[2], file))
			if err != nil {
				t.Fatal(err)
			}
			return strings.TrimSpace(string(value))
		}
	}
	t.Fatalf("process %d is in no %s group:\n%s", pid, controller, data)
	return ""
}

// limitFiles are the control files of a replica with limits memory 32Mi, cpu 250m and
// pids 64, and what they must hold.
var limitFiles = map[string][]struct{ controller, file, want string }{
	"v1": {
		{"memory", "memory.limit_in_bytes", strconv.Itoa(32 << 20)},
		{"cpu", "cpu.cfs_quota_us", "25000"},
		{"cpu", "cpu.cfs_period_us", "100000"},
		{"pids", "pids.max", "64"},
	},
	"v2": {
		{"", "memory.max", strconv.Itoa(32 << 20)},
		{"", "cpu.max", "25000 100000"},
		{"", "pids.max", "64"},
	},
}

// On the cgroups of this machine (v1 here and on the CI; v2 on a modern VM): every
// replica in a cgroup of its own with its function's limits, a grandchild that left the
// process group dies with its replica, a replica over its memory limit is OOM-killed,
// reported and replaced, and usage is read.
func TestReplicasAreContainedLimitedAndMeasured(t *testing.T) {
	d := testkit.StartDaemon(t, workload("hog", `limits = { memory = "32Mi", cpu = "250m", pids = 64 }`)+
		workload("plain", ""))
	c := containment(t, d)
	if limitFiles[c.Cgroups] == nil || !c.LimitsEnforced || c.Warning != "" {
		t.Fatalf("containment %+v, want cgroups with limits enforced", c)
	}

	// The limits reach the kernel.
	hog := mustInfo(t, d, "hog")
	for _, f := range limitFiles[c.Cgroups] {
		if got := cgroupFile(t, hog.PID, f.controller, f.file); got != f.want {
			t.Errorf("%s of the replica: %s, want %s", f.file, got, f.want)
		}
	}
	pids := limitFiles[c.Cgroups][len(limitFiles[c.Cgroups])-1]
	if got := cgroupFile(t, mustInfo(t, d, "plain").PID, pids.controller, pids.file); got != "4096" {
		t.Errorf("pids.max without limits: %s, want the default 4096", got)
	}

	// A grandchild that left the replica's process group and session goes with it.
	code, body := testkit.Get(t, d.URL+"/function/plain/spawn?setsid=1")
	grandchild, err := strconv.Atoi(strings.TrimSpace(body))
	if code != 200 || err != nil {
		t.Fatalf("setsid: %d %s", code, body)
	}
	if code, body := d.API("POST", "/system/scale-function/plain", `{"serviceName":"plain","replicas":0}`); code != 202 {
		t.Fatalf("scale to 0: %d %s", code, body)
	}
	testkit.WaitFor(t, 20*time.Second, "the grandchild to die with its replica", func() bool { return !testkit.Alive(grandchild) })

	// Over its memory limit: killed, reported, counted, replaced. A POST: the proxy sends
	// a GET again when the reused connection it went over breaks before an answer, and
	// the second try would run out of memory on the next replica too.
	resp, err := http.Post(d.URL+"/function/hog/hog?mb=64", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 502 {
		t.Errorf("a call that ran out of memory: %d, want 502", resp.StatusCode)
	}
	testkit.WaitFor(t, 20*time.Second, "a replacement of the OOM-killed replica", func() bool {
		info, err := d.GetInfo("hog")
		return err == nil && info.PID != hog.PID
	})
	if st := functionStatus(t, d, "hog"); st.LastError != "out of memory (limit 32Mi)" || st.OOMKills != 1 {
		t.Errorf("after the OOM kill: last error %q, %d OOM kills", st.LastError, st.OOMKills)
	}
	if n := d.Metric("faasd_replica_oom_kills_total", "hog"); n != 1 {
		t.Errorf("faasd_replica_oom_kills_total{hog} = %v, want 1", n)
	}
	if !strings.Contains(d.Log(), `msg="out of memory: the kernel killed the program" function=hog`) {
		t.Error("no log line of the OOM kill")
	}

	// Usage, read once a second: memory now, and CPU time that only grows.
	for range 5 {
		mustInfo(t, d, "hog")
	}
	testkit.WaitFor(t, 10*time.Second, "usage in the API, of the function and each replica, and in /metrics", func() bool {
		st := functionStatus(t, d, "hog")
		u := st.Usage
		if u == nil || u.TotalMemoryBytes == 0 || len(st.Instances) == 0 {
			return false
		}
		replicas := 0.0
		for _, in := range st.Instances {
			if in.Usage == nil {
				return false
			}
			replicas += in.Usage.TotalMemoryBytes
		}
		return replicas == u.TotalMemoryBytes &&
			d.Metric("faasd_function_cpu_seconds_total", "hog") > 0 && d.Metric("faasd_function_memory_bytes", "hog") > 0
	})
	if m := d.Metric("faasd_function_memory_bytes", "hog"); m > 32<<20 {
		t.Errorf("memory %v over the limit", m)
	}
}

func mustInfo(t *testing.T, d *testkit.Daemon, fn string) testkit.Info {
	t.Helper()
	info, err := d.GetInfo(fn)
	if err != nil {
		t.Fatal(err)
	}
	return info
}
