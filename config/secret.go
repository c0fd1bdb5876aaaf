package config

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
)

// Secret is a [secrets.NAME] table: a secret the file needs, and how the daemon makes it
// when the store does not have it yet. The daemon never overwrites a stored secret, so a
// value set later through the API or the CLI stays.
type Secret struct {
	Name     string
	Generate bool   // a random value: 32 characters of [A-Za-z0-9_-]
	File     string // absolute; the value is the file's contents
}

type rawSecret struct {
	Generate bool   `toml:"generate"`
	File     string `toml:"file"`
}

var secretName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`)

// ValidSecretName accepts DNS-1123 subdomains, as faas-cli does; that rules out `/`,
// `..` and anything else that could reach outside the store.
func ValidSecretName(name string) error {
	if len(name) > 253 || !secretName.MatchString(name) || strings.Contains(name, "..") {
		return fmt.Errorf("invalid secret name %q: want lower-case letters, digits, '-' and '.', starting and ending alphanumeric", name)
	}
	return nil
}

func (r rawSecret) resolve(name, base string) (*Secret, error) {
	if err := ValidSecretName(name); err != nil {
		return nil, err
	}
	switch {
	case r.Generate && r.File != "":
		return nil, errors.New("generate and file: set only one")
	case !r.Generate && r.File == "":
		return nil, errors.New(`generate or file: one is required (generate = true for a random value, file = "path" for a value you keep)`)
	}
	s := &Secret{Name: name, Generate: r.Generate}
	if r.File != "" {
		s.File = absUnder(base, r.File)
	}
	return s, nil
}

// resolveSecrets fills cfg.Secrets from the [secrets.NAME] tables that could be read,
// adding what is wrong with them to probs.
func resolveSecrets(cfg *Config, raw map[string]rawSecret, base string, loc locator, probs *problems) {
	cfg.Secrets = map[string]*Secret{}
	for _, name := range slices.Sorted(maps.Keys(raw)) {
		s, err := raw[name].resolve(name, base)
		loc.report(probs, []string{"secrets", name}, err)
		if err == nil {
			cfg.Secrets[name] = s
		}
	}
}

// checkEnvSecrets validates a service's env_secrets: variable names, secret names, and no
// variable set both ways.
func checkEnvSecrets(s *Service) error {
	for _, k := range slices.Sorted(maps.Keys(s.EnvSecrets)) {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return fmt.Errorf("env_secrets: invalid variable name %q", k)
		}
		if _, ok := s.Env[k]; ok {
			return fmt.Errorf("env_secrets: %s is also in env: set it in one place", k)
		}
		if err := ValidSecretName(s.EnvSecrets[k]); err != nil {
			return fmt.Errorf("env_secrets: %s: %v", k, err)
		}
	}
	return nil
}
