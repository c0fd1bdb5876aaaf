package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"maps"
	"slices"

	"faasd/config"
)

// secretStore is what serve needs of the secrets store for the file's secrets.
type secretStore interface {
	Provision(map[string]*config.Secret) ([]string, error)
	Read(name string) ([]byte, error)
}

// prepareSecrets makes the secrets the file declares and are not stored yet, then returns
// the services with the variables of their env_secrets set from the store. Both happen
// before any service or function starts, so that neither starts without its secrets.
func prepareSecrets(cfg *config.Config, store secretStore, log *slog.Logger) (map[string]*config.Service, error) {
	made, err := store.Provision(cfg.Secrets)
	if len(made) > 0 {
		log.Info("secrets made from the configuration file", "secrets", made)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: [secrets]: %w", cfg.Path, err)
	}
	out := make(map[string]*config.Service, len(cfg.Services))
	for name, spec := range cfg.Services {
		if len(spec.EnvSecrets) == 0 {
			out[name] = spec
			continue
		}
		s := *spec
		s.Env = maps.Clone(spec.Env)
		if s.Env == nil {
			s.Env = map[string]string{}
		}
		for _, k := range slices.Sorted(maps.Keys(spec.EnvSecrets)) {
			secret := spec.EnvSecrets[k]
			v, err := store.Read(secret)
			if err != nil {
				return nil, fmt.Errorf("service %s: env_secrets.%s: %w (create it with `faasd secret create %s`, or declare it in [secrets.%s])", name, k, err, secret, secret)
			}
			if bytes.IndexByte(v, 0) >= 0 {
				return nil, fmt.Errorf("service %s: env_secrets.%s: secret %s holds a NUL byte, which an environment variable cannot", name, k, secret)
			}
			s.Env[k] = string(v)
		}
		out[name] = &s
	}
	return out, nil
}
