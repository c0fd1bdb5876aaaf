package cgroup

import "strconv"

// Limits bound one group: a replica, or a service's process. Zero means no limit.
type Limits struct {
	MemoryBytes int64 // resident memory; the OOM killer acts in the group above it
	CPUMillis   int64 // CPU time per second of wall time, in thousandths of a CPU
	Pids        int64 // tasks, that is processes and threads
}

// cfsPeriod is the scheduler period a CPU quota is expressed in (100 ms, the kernel's and
// Kubernetes' default), in microseconds; minQuota is the smallest quota the kernel takes.
const (
	cfsPeriod = 100_000
	minQuota  = 1_000
)

// cpuQuota is the quota per cfsPeriod for a CPU limit in millicores: "500m" runs half
// of each period, "2" two periods' worth across CPUs.
func cpuQuota(millis int64) int64 {
	return max(millis*cfsPeriod/1000, minQuota)
}

// setting is one control file and the value a limit writes to it.
type setting struct {
	controller string
	file       string
	value      string
	optional   bool // missing without that kernel feature (swap accounting): skipped
}

// v2Settings are the files of a v2 group for lim. Swap is not a way around the memory
// limit: a replica over it is OOM-killed, as a container without swap would be.
func v2Settings(lim Limits) []setting {
	var out []setting
	if lim.MemoryBytes > 0 {
		out = append(out,
			setting{"memory", "memory.max", itoa(lim.MemoryBytes), false},
			setting{"memory", "memory.swap.max", "0", true})
	}
	if lim.CPUMillis > 0 {
		out = append(out, setting{"cpu", "cpu.max", itoa(cpuQuota(lim.CPUMillis)) + " " + itoa(cfsPeriod), false})
	}
	if lim.Pids > 0 {
		out = append(out, setting{"pids", "pids.max", itoa(lim.Pids), false})
	}
	return out
}

// v1Settings are the files of a v1 group for lim, in the order the kernel needs them:
// memory+swap may never be below memory alone, and the period before the quota.
func v1Settings(lim Limits) []setting {
	var out []setting
	if lim.MemoryBytes > 0 {
		out = append(out,
			setting{"memory", "memory.limit_in_bytes", itoa(lim.MemoryBytes), false},
			setting{"memory", "memory.memsw.limit_in_bytes", itoa(lim.MemoryBytes), true})
	}
	if lim.CPUMillis > 0 {
		out = append(out,
			setting{"cpu", "cpu.cfs_period_us", itoa(cfsPeriod), false},
			setting{"cpu", "cpu.cfs_quota_us", itoa(cpuQuota(lim.CPUMillis)), false})
	}
	if lim.Pids > 0 {
		out = append(out, setting{"pids", "pids.max", itoa(lim.Pids), false})
	}
	return out
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
