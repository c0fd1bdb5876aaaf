package config

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"faasd/statedir"
)

// Defaults of a service. Databases flush on SIGTERM and may take a while to come up the
// first time, so both bounds are wider than a function's.
const (
	DefaultServiceReadyTimeout = 60 * time.Second
	DefaultServiceStopGrace    = 30 * time.Second
)

// Service is the spec of one supervised service: a long-running, stateful dependency such
// as a database. The daemon starts it before the functions that name it in depends_on,
// restarts it when it exits, and stops it after every function. It is never scaled and
// never proxied, and it sees the host's /tmp.
type Service struct {
	Name    string
	Command []string // argv; Command[0] is looked up in PATH unless it has a slash
	// Init runs before the first start, while DataDir is still empty: creating a
	// database's files and accounts. A failed or interrupted init runs again.
	Init    []string
	Workdir string // absolute
	Env     map[string]string
	// EnvSecrets sets environment variables from secrets of the store: variable name →
	// secret name. The daemon reads the values when it starts the service; a program
	// such as a database's init script then needs no password in the file.
	EnvSecrets map[string]string
	// User is the account the service runs as when the daemon is root; it owns DataDir.
	// Empty means an unprivileged account of the service's own ([gateway] user_range);
	// running as root takes an explicit user = "root".
	User    string
	DataDir string // absolute: STATE/services/NAME, passed as DATA_DIR

	// At most one of the two: the service is ready once ReadyTCP accepts a connection,
	// or once ReadyCommand exits 0; with neither, as soon as it has started.
	ReadyTCP     string
	ReadyCommand []string
	ReadyTimeout time.Duration // init plus start until ready; then it is killed and retried
	StopGrace    time.Duration // SIGTERM → SIGKILL
	Limits       Limits        // enforced through cgroups (limits.go)
}

// Equal reports whether two specs would run the same process.
func (s *Service) Equal(o *Service) bool {
	return s.Name == o.Name && slices.Equal(s.Command, o.Command) && slices.Equal(s.Init, o.Init) &&
		s.Workdir == o.Workdir && maps.Equal(s.Env, o.Env) && maps.Equal(s.EnvSecrets, o.EnvSecrets) &&
		s.User == o.User && s.DataDir == o.DataDir &&
		s.ReadyTCP == o.ReadyTCP && slices.Equal(s.ReadyCommand, o.ReadyCommand) &&
		s.ReadyTimeout == o.ReadyTimeout && s.StopGrace == o.StopGrace && s.Limits == o.Limits
}

// ServiceNames returns the service names in order.
func (c *Config) ServiceNames() []string {
	return slices.Sorted(maps.Keys(c.Services))
}

type rawService struct {
	Command      []string          `toml:"command"`
	Init         []string          `toml:"init"`
	Workdir      string            `toml:"workdir"`
	Env          map[string]string `toml:"env"`
	EnvSecrets   map[string]string `toml:"env_secrets"`
	User         string            `toml:"user"`
	ReadyTCP     string            `toml:"ready_tcp"`
	ReadyCommand []string          `toml:"ready_command"`
	ReadyTimeout *Duration         `toml:"ready_timeout"`
	StopGrace    *Duration         `toml:"stop_grace"`
	Limits       *rawLimits        `toml:"limits"`
}

// resolveServices fills cfg.Services from the [services.NAME] tables and checks that the
// depends_on of every function names one of them.
// unread names the tables that could not be read, reported already.
func resolveServices(cfg *Config, raw map[string]rawService, base string, loc locator, probs *problems, unread map[string]bool) {
	cfg.Services = map[string]*Service{}
	for _, name := range slices.Sorted(maps.Keys(raw)) {
		s, err := raw[name].resolve(name, base, cfg.Gateway)
		loc.report(probs, []string{"services", name}, err)
		if err == nil {
			cfg.Services[name] = s
		}
	}
	for _, name := range cfg.Names() {
		for _, dep := range cfg.Functions[name].DependsOn {
			if _, ok := cfg.Services[dep]; ok {
				continue
			}
			if _, declared := raw[dep]; declared || unread[dep] {
				continue // the service itself is in error, reported above
			}
			known := "there are no [services]"
			if len(raw) > 0 {
				known = "services: " + strings.Join(slices.Sorted(maps.Keys(raw)), ", ")
			}
			loc.report(probs, []string{"functions", name}, fmt.Errorf("depends_on: no service %q (%s)", dep, known))
		}
	}
}

func (r rawService) resolve(name, base string, g Gateway) (*Service, error) {
	s := &Service{
		Name:         name,
		Command:      r.Command,
		Init:         r.Init,
		Workdir:      absUnder(base, cmp.Or(r.Workdir, ".")),
		Env:          r.Env,
		EnvSecrets:   r.EnvSecrets,
		User:         r.User,
		DataDir:      statedir.New(g.StateDir).Service(name),
		ReadyTCP:     r.ReadyTCP,
		ReadyCommand: r.ReadyCommand,
		ReadyTimeout: dur(r.ReadyTimeout, DefaultServiceReadyTimeout),
		StopGrace:    dur(r.StopGrace, DefaultServiceStopGrace),
	}
	var err error
	if s.Limits, err = r.Limits.resolve(); err != nil {
		return nil, err
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return s, nil
}

// Validate checks a service spec and reports every problem it finds.
func (s *Service) Validate() error {
	var errs []error
	add := func(err error) { errs = append(errs, err) }
	// Service names become directories and log attributes, like function names.
	if len(s.Name) > 63 || !dns1123.MatchString(s.Name) {
		add(fmt.Errorf("invalid service name %q: want a DNS-1123 label (lower-case letters, digits and '-', at most 63, starting and ending alphanumeric)", s.Name))
	}
	switch {
	case len(s.Command) == 0:
		add(errors.New("command: required (the argv of the long-running process)"))
	case s.Command[0] == "":
		add(errors.New("command: the program must not be empty"))
	}
	if s.Init != nil && (len(s.Init) == 0 || s.Init[0] == "") {
		add(errors.New("init: the program must not be empty"))
	}
	if s.ReadyTCP != "" && s.ReadyCommand != nil {
		add(errors.New("ready_tcp and ready_command: set only one"))
	}
	if s.ReadyCommand != nil && (len(s.ReadyCommand) == 0 || s.ReadyCommand[0] == "") {
		add(errors.New("ready_command: the program must not be empty"))
	}
	if s.ReadyTCP != "" {
		host, port, err := net.SplitHostPort(s.ReadyTCP)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			add(fmt.Errorf("ready_tcp: %q is not a host:port address such as \"127.0.0.1:3306\"", s.ReadyTCP))
		}
	}
	if !filepath.IsAbs(s.Workdir) {
		add(fmt.Errorf("workdir: %q must be absolute", s.Workdir))
	}
	if !filepath.IsAbs(s.DataDir) {
		add(fmt.Errorf("data dir %q must be absolute", s.DataDir))
	}
	add(checkEnv(s.Env))
	add(checkEnvSecrets(s))
	if s.ReadyTimeout <= 0 {
		add(errors.New("ready_timeout: must be positive"))
	}
	if s.StopGrace <= 0 {
		add(errors.New("stop_grace: must be positive"))
	}
	add(s.Limits.validate())
	return errors.Join(errs...)
}
