package main

import (
	"log/slog"
	"strings"
	"testing"

	"faasd/catalog"
	"faasd/config"
)

// store is a secrets store in memory.
type store map[string]string

func (s store) Provision(specs map[string]*config.Secret) ([]string, error) {
	var made []string
	for name := range specs {
		if _, ok := s[name]; !ok {
			s[name] = "generated"
			made = append(made, name)
		}
	}
	return made, nil
}

func (s store) Read(name string) ([]byte, error) {
	v, ok := s[name]
	if !ok {
		return nil, catalog.ErrNotFound
	}
	return []byte(v), nil
}

func TestServicesGetTheirEnvSecrets(t *testing.T) {
	db := &config.Service{Name: "db", Env: map[string]string{"PORT": "3307"}, EnvSecrets: map[string]string{"PASSWORD": "db-pw"}}
	plain := &config.Service{Name: "cache"}
	cfg := &config.Config{
		Path:     "/srv/faasd.toml",
		Secrets:  map[string]*config.Secret{"db-pw": {Name: "db-pw", Generate: true}},
		Services: map[string]*config.Service{"db": db, "cache": plain},
	}
	s := store{}
	got, err := prepareSecrets(cfg, s, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if env := got["db"].Env; env["PASSWORD"] != "generated" || env["PORT"] != "3307" {
		t.Errorf("db's env: %v", env)
	}
	if _, leaked := db.Env["PASSWORD"]; leaked {
		t.Error("the value was written into the parsed configuration")
	}
	if got["cache"] != plain {
		t.Error("a service without env_secrets was copied")
	}

	cfg.Secrets = nil
	cfg.Services = map[string]*config.Service{"db": {Name: "db", EnvSecrets: map[string]string{"PASSWORD": "missing"}}}
	_, err = prepareSecrets(cfg, s, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "service db: env_secrets.PASSWORD: not found (create it with `faasd secret create missing`, or declare it in [secrets.missing])") {
		t.Errorf("a missing secret: %v", err)
	}
}
