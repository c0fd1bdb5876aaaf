package supervisor

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"faasd/cgroup"
	"faasd/config"
)

// ServiceOptions configure Services.
type ServiceOptions struct {
	Logger   *slog.Logger // default: slog.Default()
	LogLines int          // lines kept per service; default 1000
	LogBytes int          // of text kept per service; default 1 MiB
	// Accounts gives each service without a user an account of its own; a daemon that
	// is root needs it, one that is not runs everything as itself.
	Accounts DynamicIDs
	// Cgroups gives each service process a cgroup with its limits, and measures usage;
	// nil, or one without a hierarchy: process groups, no limits, no usage.
	Cgroups *cgroup.Manager
}

// Services runs the daemon's supervised services: long-running, stateful dependencies
// such as a database. Each gets a data directory under the state dir, an init on its first
// start, a readiness check, restarts with the replicas' backoff and a graceful stop. They
// see the host's /tmp and network, and are never scaled or routed to.
type Services struct {
	log      *slog.Logger
	procs    *processes
	groups   *containment
	usage    *usageSampler // nil without cgroups
	dial     dialFunc
	accounts accountSource
	svcs     table[*config.Service, ServiceStatus, *service]

	mu      sync.Mutex
	changed chan struct{}
}

// ServiceStatus is a service's state as the API, the UI and the wiring see it.
type ServiceStatus struct {
	Name      string
	State     string // "starting", "ready", "failing", "stopping"
	PID       int    // of the process now running: init, or the service itself
	Started   time.Time
	ReadyAt   time.Time // zero until ready
	Restarts  int       // starts after the first
	Failures  int       // fast failures in a row
	LastError string
	RetryAt   time.Time
	OOMKills  uint64 // processes of the service the kernel's OOM killer ended
	Usage     *Usage // nil until measured (in cgroups only)
}

// NewServices returns a manager with no services.
func NewServices(opts ServiceOptions) *Services {
	// The replicas' spawning thread sits in the mount namespace of the last replica it
	// started, so services get a thread of their own that never leaves the host's. Its
	// life also bounds the parent-death signal of every service process.
	st := newForkStarter("")
	m := newServices(opts, st, dialTCP)
	st.groups = m.groups
	return m
}

func newServices(opts ServiceOptions, st starter, dial dialFunc) *Services {
	m := &Services{log: opts.Logger, procs: newProcesses(st), dial: dial, accounts: newAccountSource(opts.Accounts), changed: make(chan struct{})}
	if m.log == nil {
		m.log = slog.Default()
	}
	m.groups = newContainment(opts.Cgroups, m.log)
	if opts.LogLines <= 0 {
		opts.LogLines = 1000
	}
	if opts.LogBytes <= 0 {
		opts.LogBytes = defaultLogBytes
	}
	m.svcs = table[*config.Service, ServiceStatus, *service]{
		kind:  "service",
		log:   m.log,
		lines: opts.LogLines,
		bytes: opts.LogBytes,
		start: func(spec *config.Service, logs *Logs, after <-chan struct{}) *service {
			// A service removed a moment ago may still hold the data dir and its port:
			// the new one starts once it has stopped.
			return newService(m, spec, logs, after)
		},
		changed: func(map[string]*service) { m.notify() },
	}
	m.svcs.init()
	m.usage = startUsageSampler(m.groups, cgroup.Services, m.procs)
	return m
}

// Apply makes the running services match specs: new ones start, removed ones stop,
// changed ones stop and start again with the new spec. It does not wait; Changed and
// Ready tell when they are up.
func (m *Services) Apply(specs map[string]*config.Service) { m.svcs.apply(specs) }

// Changed returns a channel that is closed at the next change of any service's state.
// Take it before looking at the states, so that no change goes unseen.
func (m *Services) Changed() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.changed
}

func (m *Services) notify() {
	m.mu.Lock()
	defer m.mu.Unlock()
	close(m.changed)
	m.changed = make(chan struct{})
}

// Ready reports whether a service runs and passed its readiness check.
func (m *Services) Ready(name string) bool {
	st, ok := m.Status(name)
	return ok && st.State == "ready"
}

// Status returns the state of one service, with its last usage reading.
func (m *Services) Status(name string) (ServiceStatus, bool) {
	st, ok := m.svcs.status(name)
	if ok {
		st = m.withUsage(st)
	}
	return st, ok
}

// Statuses returns the state of every service, sorted by name, with its last usage
// reading.
func (m *Services) Statuses() []ServiceStatus {
	all := m.svcs.statuses()
	for i := range all {
		all[i] = m.withUsage(all[i])
	}
	return all
}

func (m *Services) withUsage(st ServiceStatus) ServiceStatus {
	if u, ok := m.usage.of(st.Name); ok {
		st.Usage = &u.Usage
	}
	return st
}

// Logs returns the output buffer of a service, also after it was removed.
func (m *Services) Logs(name string) (*Logs, bool) { return m.svcs.logsOf(name) }

// WaitReady waits until every service is ready. A service whose attempt failed ends the
// wait with its error: at start-up that is a broken installation or configuration, which
// the operator should see at once rather than after the retries.
func (m *Services) WaitReady(ctx context.Context) error {
	for {
		changed := m.Changed()
		waiting := 0
		for _, st := range m.Statuses() {
			switch {
			case st.State == "ready":
			case st.Failures > 0:
				return fmt.Errorf("service %s did not become ready: %s (its output is in the log)", st.Name, st.LastError)
			default:
				waiting++
			}
		}
		if waiting == 0 {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("waiting for services: %w", ctx.Err())
		}
	}
}

// Stop stops every service: SIGTERM, then SIGKILL after its stop_grace. When ctx ends
// first, the remaining processes are killed at once.
func (m *Services) Stop(ctx context.Context) error {
	err := m.svcs.stop(ctx, m.procs)
	m.usage.close()
	return err
}
