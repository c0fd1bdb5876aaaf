package cgroup

import (
	"reflect"
	"slices"
	"testing"
)

func TestParseMountinfo(t *testing.T) {
	for _, tc := range []struct {
		name, info string
		want       []mount
		only2      bool
	}{
		{"hybrid, one controller per mount", `
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`, []mount{
			{dir: "/sys/fs/cgroup/cpu", root: "/", controllers: []string{"cpu"}},
			{dir: "/sys/fs/cgroup/cpuacct", root: "/", controllers: []string{"cpuacct"}},
			{dir: "/sys/fs/cgroup/memory", root: "/", controllers: []string{"memory"}},
			{dir: "/sys/fs/cgroup/unified", root: "/", v2: true},
		}, false},
		{"systemd legacy, co-mounted cpu and cpuacct", `
25 24 0:22 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
26 24 0:23 / /sys/fs/cgroup/pids rw,nosuid - cgroup cgroup rw,pids
`, []mount{
			{dir: "/sys/fs/cgroup/cpu,cpuacct", root: "/", controllers: []string{"cpu", "cpuacct"}},
			{dir: "/sys/fs/cgroup/pids", root: "/", controllers: []string{"pids"}},
		}, false},
		{"v2 only", `
22 28 0:21 / /sys rw,nosuid - sysfs sysfs rw
25 22 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`, []mount{{dir: "/sys/fs/cgroup", root: "/", v2: true}}, true},
		{"a container's view, with an escaped space", `
700 690 0:30 /docker/abc /sys/fs/cgroup/memory\040x ro - cgroup cgroup rw,memory
`, []mount{{dir: "/sys/fs/cgroup/memory x", root: "/docker/abc", controllers: []string{"memory"}}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := parseMountinfo([]byte(tc.info))
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
			if unifiedOnly(got) != tc.only2 {
				t.Errorf("unifiedOnly = %v", !tc.only2)
			}
		})
	}
}

func TestParseProcCgroup(t *testing.T) {
	got := parseProcCgroup([]byte("9:name=systemd:/\n4:memory:/user.slice\n1:cpu,cpuacct:/a\n0::/system.slice/faasd.service\n"))
	want := membership{"name=systemd": "/", "memory": "/user.slice", "cpu": "/a", "cpuacct": "/a", "": "/system.slice/faasd.service"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v", got)
	}
}

func TestDirOfGroupThroughAMount(t *testing.T) {
	for _, tc := range []struct {
		m        mount
		path     string
		want     string
		inMounts bool
	}{
		{mount{dir: "/sys/fs/cgroup", root: "/"}, "/system.slice/faasd.service", "/sys/fs/cgroup/system.slice/faasd.service", true},
		{mount{dir: "/sys/fs/cgroup/memory", root: "/docker/abc"}, "/docker/abc/x", "/sys/fs/cgroup/memory/x", true},
		{mount{dir: "/sys/fs/cgroup/memory", root: "/docker/abc"}, "/docker/abc", "/sys/fs/cgroup/memory", true},
		{mount{dir: "/sys/fs/cgroup/memory", root: "/docker/abc"}, "/docker/abcd", "", false},
	} {
		got, ok := tc.m.dirOf(tc.path)
		if got != tc.want || ok != tc.inMounts {
			t.Errorf("%+v.dirOf(%q) = %q %v", tc.m, tc.path, got, ok)
		}
	}
}

func TestKeyDependsOnTheStateDirOnly(t *testing.T) {
	a, b := Key("/var/lib/faasd"), Key("/var/lib/faasd/")
	if a != b || len(a) != len("faasd/")+12 {
		t.Errorf("keys %q %q", a, b)
	}
	if Key("/var/tmp/x") == a {
		t.Error("two state dirs share a key")
	}
}

func TestSettings(t *testing.T) {
	lim := Limits{MemoryBytes: 64 << 20, CPUMillis: 5, Pids: 100}
	if got := v2Settings(lim); !reflect.DeepEqual(got, []setting{
		{"memory", "memory.max", "67108864", false}, {"memory", "memory.swap.max", "0", true},
		{"cpu", "cpu.max", "1000 100000", false}, {"pids", "pids.max", "100", false},
	}) {
		t.Errorf("v2 %v", got)
	}
	if got := v1Settings(lim); !reflect.DeepEqual(got, []setting{
		{"memory", "memory.limit_in_bytes", "67108864", false}, {"memory", "memory.memsw.limit_in_bytes", "67108864", true},
		{"cpu", "cpu.cfs_period_us", "100000", false}, {"cpu", "cpu.cfs_quota_us", "1000", false},
		{"pids", "pids.max", "100", false},
	}) {
		t.Errorf("v1 %v", got)
	}
	if len(v2Settings(Limits{})) != 0 || len(v1Settings(Limits{})) != 0 {
		t.Error("settings without limits")
	}
	for millis, quota := range map[int64]int64{500: 50000, 1000: 100000, 2500: 250000, 1: 1000} {
		if got := cpuQuota(millis); got != quota {
			t.Errorf("cpuQuota(%d) = %d, want %d", millis, got, quota)
		}
	}
}

// Which v1 trees hold a group without a CPU limit, and in what order: the first must
// hold every group, since members are listed and frozen there.
func TestLegacyTreesHoldingAGroup(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mounts [][]string // controllers per hierarchy, in mount order
		order  []string   // the trees after opening, first controller of each
		plain  []string   // the trees a group without a CPU limit is in
	}{
		{"separate cpu", [][]string{{"cpu"}, {"cpuacct"}, {"memory"}, {"freezer"}}, []string{"freezer", "cpuacct", "memory", "cpu"}, []string{"freezer", "cpuacct", "memory"}},
		{"cpu with cpuacct", [][]string{{"cpu", "cpuacct"}, {"memory"}}, []string{"cpu", "memory"}, []string{"cpu", "memory"}},
		{"cpu alone", [][]string{{"cpu"}}, []string{"cpu"}, []string{"cpu"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mounts []mount
			own := membership{}
			for _, ctrls := range tc.mounts {
				mounts = append(mounts, mount{dir: t.TempDir(), root: "/", controllers: ctrls})
				for _, c := range ctrls {
					own[c] = "/"
				}
			}
			l, err := openLegacy(mounts, own, "faasd/abc")
			if err != nil {
				t.Fatal(err)
			}
			var order, plain []string
			for _, tr := range l.trees {
				order = append(order, tr.controllers[0])
				if tr.holds(Limits{MemoryBytes: 1 << 20}) {
					plain = append(plain, tr.controllers[0])
				}
				if !tr.holds(Limits{CPUMillis: 100}) {
					t.Errorf("tree %v does not hold a group with a CPU limit", tr.controllers)
				}
			}
			if !slices.Equal(order, tc.order) || !slices.Equal(plain, tc.plain) {
				t.Errorf("trees %v, holding a plain group %v; want %v, %v", order, plain, tc.order, tc.plain)
			}
		})
	}
}
