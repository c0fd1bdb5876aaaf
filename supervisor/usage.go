package supervisor

import (
	"errors"
	"io/fs"
	"slices"
	"sync/atomic"
	"time"

	"faasd/cgroup"
)

// usageInterval is how often usage is read from the cgroups: the CPU rate is an average
// over it, and a scrape or a status read only ever takes the last reading, so that
// neither a request nor a metrics scrape touches cgroupfs.
const usageInterval = time.Second

// Usage is what the processes of a function (its replicas), of one replica or of a
// service use, as their cgroups count it.
type Usage struct {
	// CPU is the CPU time used: for a function, by every replica since its first one
	// started in this run of the daemon, those gone included.
	CPU time.Duration
	// CPUMillis is the CPU used over the last interval, in thousandths of a CPU (what
	// OpenFaaS's usage calls cpu).
	CPUMillis float64
	// MemoryBytes is the memory charged now: for a function, the sum of its replicas'.
	MemoryBytes uint64
}

// usageSampler reads the usage of the processes of one kind (functions or services)
// once per usageInterval. Without cgroups it is nil, and reports nothing.
type usageSampler struct {
	cg    *cgroup.Manager
	kind  cgroup.Kind
	procs *processes

	last atomic.Pointer[usageSample]
	stop chan struct{}
	done chan struct{}
}

// usageSample is one reading.
type usageSample struct {
	at    time.Time
	units map[string]unitUsage // by function or service
}

type unitUsage struct {
	Usage
	instances map[string]Usage // by replica id, or service run
}

// startUsageSampler starts sampling, if the processes run in cgroups.
func startUsageSampler(c *containment, kind cgroup.Kind, procs *processes) *usageSampler {
	if !c.enabled() {
		return nil
	}
	s := &usageSampler{cg: c.cg, kind: kind, procs: procs, stop: make(chan struct{}), done: make(chan struct{})}
	s.last.Store(&usageSample{units: map[string]unitUsage{}})
	go s.run()
	return s
}

func (s *usageSampler) run() {
	defer close(s.done)
	t := time.NewTicker(usageInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.last.Store(s.sample(s.last.Load(), time.Now()))
		}
	}
}

// close stops the sampling.
func (s *usageSampler) close() {
	if s == nil {
		return
	}
	close(s.stop)
	<-s.done
}

// sample reads the groups of the live processes, and the group of each unit that has
// live processes or had them before: its CPU time lives on in it until it is removed.
func (s *usageSampler) sample(prev *usageSample, at time.Time) *usageSample {
	next := &usageSample{at: at, units: map[string]unitUsage{}}
	interval := at.Sub(prev.at)
	s.procs.each(func(p *process) {
		g, ok := p.group.usage()
		if !ok || p.name.unit == "" {
			return
		}
		u := next.units[p.name.unit]
		if u.instances == nil {
			u.instances = map[string]Usage{}
		}
		before, seen := prev.units[p.name.unit].instances[p.name.instance]
		u.instances[p.name.instance] = Usage{CPU: g.CPU, CPUMillis: rate(before.CPU, g.CPU, interval, seen), MemoryBytes: g.MemoryBytes}
		u.MemoryBytes += g.MemoryBytes
		next.units[p.name.unit] = u
	})
	names := make([]string, 0, len(next.units)+len(prev.units))
	for name := range next.units {
		names = append(names, name)
	}
	for name := range prev.units {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range slices.Compact(names) {
		total, err := s.cg.Usage(s.kind, name)
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed with its function or service
		}
		if err != nil {
			total.CPU = prev.units[name].CPU
		}
		u := next.units[name]
		before, seen := prev.units[name]
		u.CPU, u.CPUMillis = total.CPU, rate(before.CPU, total.CPU, interval, seen)
		next.units[name] = u
	}
	return next
}

// rate is the CPU used between two readings, in thousandths of a CPU.
func rate(before, now, interval time.Duration, seen bool) float64 {
	if !seen || interval <= 0 || now < before {
		return 0
	}
	return float64(now-before) / float64(interval) * 1000
}

// of returns the last reading of a unit; false when there is none.
func (s *usageSampler) of(name string) (unitUsage, bool) {
	if s == nil {
		return unitUsage{}, false
	}
	u, ok := s.last.Load().units[name]
	return u, ok
}

// addTo fills in the usage of a function's status and of its replicas.
func (s *usageSampler) addTo(st Status) Status {
	u, ok := s.of(st.Name)
	if !ok {
		return st
	}
	st.Usage = &u.Usage
	replicas := make([]ReplicaStatus, len(st.Replicas))
	for i, r := range st.Replicas {
		if ru, ok := u.instances[r.ID]; ok {
			r.Usage = &ru
		}
		replicas[i] = r
	}
	st.Replicas = replicas
	return st
}
