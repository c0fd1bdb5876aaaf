package catalog

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"faasd/api"
	"faasd/config"
)

// ErrInvalid marks a deployment the caller must correct.
var ErrInvalid = errors.New("invalid deployment")

// specOf turns a deployment into the spec the supervisor runs, with the daemon's defaults.
// The API may run any command as the default unprivileged account, but never choose a more
// privileged one or take a name that reaches the gateway itself: those are faasd.toml's.
func specOf(d *api.Deployment, g config.Gateway, own config.OwnNames) (*config.Function, error) {
	invalid := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
	}
	if d.Service == "" {
		return nil, invalid("service: a function name is required")
	}
	if err := config.ValidName(d.Service); err != nil {
		return nil, invalid("service: %v", err)
	}
	// OpenFaaS's watchdog reads its command from the fprocess variable, so stack files
	// often set it under environment: instead of sending envProcess; envProcess wins.
	fprocess := cmp.Or(d.EnvProcess, d.EnvVars["fprocess"])
	switch {
	case fprocess == "" && len(d.Command) == 0:
		return nil, invalid("send envProcess (a command forked once per request, body on stdin: classic mode) or command (an HTTP server that listens on $PORT)")
	case fprocess != "" && len(d.Command) > 0:
		return nil, invalid("envProcess (or envVars.fprocess) and command: send only one")
	}
	for _, s := range d.Secrets {
		if err := config.ValidSecretName(s); err != nil {
			return nil, invalid("secrets: %v", err)
		}
	}
	if !g.AllowsAPIUser(d.User) {
		return nil, invalid("user: %q may not be chosen through the API: deployed functions run as the default unprivileged user; "+
			"to allow this account, name it in [gateway] api_users of faasd.toml", d.User)
	}
	for _, h := range d.Hosts {
		if err := own.Check(h); err != nil {
			return nil, invalid("hosts: %v", err)
		}
	}
	f := &config.Function{
		Name:        d.Service,
		Command:     slices.Clone(d.Command),
		Fprocess:    fprocess,
		Workdir:     cmp.Or(d.Workdir, "/"),
		Env:         maps.Clone(d.EnvVars),
		Labels:      maps.Clone(d.Labels),
		Annotations: maps.Clone(d.Annotations),
		Hosts:       slices.Clone(d.Hosts),
		Secrets:     slices.Clone(d.Secrets),
		User:        d.User,
		LockFile:    d.LockFile,
	}
	var err error
	durations := []struct {
		key string
		v   string
		dst *time.Duration
		def time.Duration
	}{
		{"timeout", d.Timeout, &f.Timeout, g.UpstreamTimeout},
		{"readinessTimeout", d.ReadinessTimeout, &f.ReadinessTimeout, config.DefaultReadinessTimeout},
		{"healthInterval", d.HealthInterval, &f.HealthInterval, config.DefaultHealthInterval},
		{"stopGrace", d.StopGrace, &f.StopGrace, config.DefaultStopGrace},
		{"drainTimeout", d.DrainTimeout, &f.DrainTimeout, 0},
	}
	for _, x := range durations {
		if x.v == "" {
			*x.dst = x.def
			continue
		}
		if *x.dst, err = time.ParseDuration(x.v); err != nil {
			return nil, invalid("%s: %q is not a duration such as \"30s\"", x.key, x.v)
		}
	}
	if f.DrainTimeout == 0 {
		f.DrainTimeout = f.Timeout
	}
	if d.Limits != nil {
		if f.Limits.Memory, f.Limits.CPU, err = config.ParseResources(d.Limits.Memory, d.Limits.CPU); err != nil {
			return nil, invalid("limits: %v", err)
		}
		f.Limits.Pids = d.Limits.Pids
	}
	if d.Requests != nil {
		if d.Requests.Pids != 0 {
			return nil, invalid("requests: pids: only a limit")
		}
		if f.Requests.Memory, f.Requests.CPU, err = config.ParseResources(d.Requests.Memory, d.Requests.CPU); err != nil {
			return nil, invalid("requests: %v", err)
		}
	}
	for k := range f.Env {
		if strings.HasPrefix(k, "Http_") {
			return nil, invalid("envVars: %s: names starting with Http_ are the request's, set per call", k)
		}
	}
	delete(f.Env, "fprocess") // the replica gets it from Fprocess
	if err := f.Validate(g.ScaleDefaults); err != nil {
		return nil, invalid("%v", err)
	}
	return f, nil
}

// fromSpec describes a function of faasd.toml in the API's terms.
func fromSpec(f *config.Function) api.Deployment {
	return api.Deployment{
		Service:     f.Name,
		Namespace:   api.Namespace,
		EnvProcess:  f.Fprocess,
		EnvVars:     f.Env,
		Secrets:     f.Secrets,
		Labels:      f.Labels,
		Annotations: f.Annotations,
		Command:     f.Command,
		Workdir:     f.Workdir,
		User:        f.User,
		Hosts:       f.Hosts,
		Limits:      limitsOf(f.Limits),
		Requests:    resources(f.Requests.Memory, f.Requests.CPU),
	}
}

// limitsOf describes limits in the API's terms; the default pids limit goes unsaid.
func limitsOf(l config.Limits) *api.Resources {
	r := resources(l.Memory, l.CPU)
	if l.Pids != config.DefaultPids {
		if r == nil {
			r = &api.Resources{}
		}
		r.Pids = l.Pids
	}
	return r
}

// resources describes quantities as written, or nil when there are none.
func resources(m config.Memory, c config.CPU) *api.Resources {
	if m.IsZero() && c.IsZero() {
		return nil
	}
	return &api.Resources{Memory: m.String(), CPU: c.String()}
}
