package export

import (
	"bytes"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"faasd/config"
)

// servicesFile writes services.md: the [services] faasd supervised are stateful
// dependencies, not functions, so they are not exported as functions; the file says what
// each was, which exported functions need it, and what to run in its place. nil when no
// exported function needs a service and the stack has none.
func (e *exporter) servicesFile(plans []*plan) []byte {
	if len(e.cfg.Services) == 0 {
		return nil
	}
	users := map[string][]*plan{}
	for _, p := range plans {
		for _, dep := range p.fn.DependsOn {
			users[dep] = append(users[dep], p)
		}
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Services of %s\n\n", filepath.Base(e.cfg.Path))
	b.WriteString("faasd ran these as supervised processes beside the functions. They keep state, so\n" +
		"they are not functions and `faasd export` does not turn them into any: run each as\n" +
		"the cluster runs stateful software, then point the functions that use it at its\n" +
		"address (their environment in stack.yml still names this machine's).\n")
	for _, name := range e.cfg.ServiceNames() {
		s := e.cfg.Services[name]
		fmt.Fprintf(&b, "\n## %s\n\n", name)
		account := "an account of its own"
		if s.User != "" {
			account = "`" + s.User + "`"
		}
		fmt.Fprintf(&b, "- command: `%s` in `%s`, as %s\n", strings.Join(s.Command, " "), e.rel(s.Workdir), account)
		if len(s.Init) > 0 {
			fmt.Fprintf(&b, "- init, once while its data dir was empty: `%s`\n", strings.Join(s.Init, " "))
		}
		if s.ReadyTCP != "" {
			fmt.Fprintf(&b, "- listened on `%s`\n", s.ReadyTCP)
		}
		fmt.Fprintf(&b, "- data: `%s` (faasd's state dir; copy it over or restore a dump)\n", e.rel(s.DataDir))
		if len(s.Env) > 0 {
			fmt.Fprintf(&b, "- environment: %s\n", strings.Join(slices.Sorted(maps.Keys(s.Env)), ", "))
		}
		for _, k := range slices.Sorted(maps.Keys(s.EnvSecrets)) {
			fmt.Fprintf(&b, "- environment from a secret: %s, the value of the secret %s\n", k, s.EnvSecrets[k])
		}
		if l := s.Limits; !l.Memory.IsZero() || !l.CPU.IsZero() || l.Pids != config.DefaultPids {
			fmt.Fprintf(&b, "- limits: %s\n", serviceLimits(l))
		}
		if ps := users[name]; len(ps) > 0 {
			var names []string
			for _, p := range ps {
				names = append(names, p.fn.Name)
			}
			fmt.Fprintf(&b, "- used by: %s\n", strings.Join(names, ", "))
			for _, p := range ps {
				if keys := localAddresses(p.env); len(keys) > 0 {
					fmt.Fprintf(&b, "  - %s reaches it through its environment (%s), which names this machine: set the new address there\n", p.fn.Name, strings.Join(keys, ", "))
				}
			}
		} else {
			b.WriteString("- used by: no exported function\n")
		}
		fmt.Fprintf(&b, "\nRun instead: %s\n", instead(s))
		e.note("", "service %s is not exported: services.md says what to run instead", name)
	}
	return b.Bytes()
}

// serviceLimits says what faasd bounded a service's process to, and where the cluster
// sets the same bounds.
func serviceLimits(l config.Limits) string {
	var parts []string
	r := quantities(l.Memory, l.CPU)
	for _, k := range slices.Sorted(maps.Keys(r)) {
		parts = append(parts, fmt.Sprintf("%s `%s`", k, r[k]))
	}
	if len(parts) > 0 {
		parts = []string{strings.Join(parts, ", ") + " (its container's `resources.limits`)"}
	}
	if l.Pids != config.DefaultPids {
		parts = append(parts, fmt.Sprintf("pids %d (%s)", l.Pids, pidsElsewhere))
	}
	return strings.Join(parts, "; ")
}

// localAddresses lists the environment variables whose values point at this machine.
func localAddresses(env map[string]string) []string {
	var keys []string
	for _, k := range slices.Sorted(maps.Keys(env)) {
		if v := env[k]; strings.Contains(v, "127.0.0.1") || strings.Contains(v, "localhost") || strings.Contains(v, "[::1]") {
			keys = append(keys, k)
		}
	}
	return keys
}

// instead suggests what a cluster runs in place of a service, by what the service runs.
func instead(s *config.Service) string {
	what := strings.ToLower(strings.Join(slices.Concat(s.Command, s.Init, []string{s.Name, s.Workdir}), " "))
	for _, db := range []struct{ words, kind string }{
		{"mariadb mysql", "MariaDB/MySQL"},
		{"postgres psql pg_ctl", "PostgreSQL"},
		{"redis valkey", "Redis"},
		{"mongo", "MongoDB"},
		{"rabbitmq", "RabbitMQ"},
		{"nats", "NATS"},
	} {
		for _, w := range strings.Fields(db.words) {
			if strings.Contains(what, w) {
				return fmt.Sprintf("a managed %s from your cloud, or a %s StatefulSet with a persistent volume "+
					"(an operator or a Helm chart); create its accounts and schema as its init did, "+
					"and give the functions its Service's DNS name.", db.kind, db.kind)
			}
		}
	}
	return "a Deployment (or a StatefulSet with a persistent volume, if it keeps data) running the " +
		"same command from an image of its own, and a Service in front of it; give the functions " +
		"that Service's DNS name."
}
