package config

import (
	"maps"
	"strings"
	"testing"
)

func TestParseSecretsAndEnvSecrets(t *testing.T) {
	cfg, err := Parse("/srv/app/faasd.toml", []byte(`
[secrets.db-password]
generate = true

[secrets."tls.key"]
file = "keys/tls.key"

[services.db]
command = ["./run.sh"]
env = { PORT = "3307" }
env_secrets = { DB_PASSWORD = "db-password" }

[functions.app]
command = ["./app"]
secrets = ["db-password", "tls.key"]
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := *cfg.Secrets["db-password"]; got != (Secret{Name: "db-password", Generate: true}) {
		t.Errorf("db-password = %+v", got)
	}
	if got := *cfg.Secrets["tls.key"]; got != (Secret{Name: "tls.key", File: "/srv/app/keys/tls.key"}) {
		t.Errorf("tls.key = %+v", got)
	}
	if got := cfg.Services["db"].EnvSecrets; !maps.Equal(got, map[string]string{"DB_PASSWORD": "db-password"}) {
		t.Errorf("env_secrets = %v", got)
	}
	other := *cfg.Services["db"]
	other.EnvSecrets = map[string]string{"DB_PASSWORD": "another"}
	if cfg.Services["db"].Equal(&other) {
		t.Error("services with different env_secrets are equal")
	}
}

func TestSecretErrors(t *testing.T) {
	for _, tc := range []struct {
		name, toml, want string
	}{
		{"BothWays", "[secrets.a]\ngenerate = true\nfile = \"x\"\n", "f.toml:1: secrets.a: generate and file: set only one"},
		{"NeitherWay", "[secrets.a]\n", "f.toml:1: secrets.a: generate or file: one is required"},
		{"BadName", "[secrets.A_B]\ngenerate = true\n", `invalid secret name "A_B"`},
		{"Typo", "[secrets.a]\ngenerat = true\n", "f.toml:2: secrets.a.generat: unknown key (did you mean generate?)"},
		{"FunctionSecretName", "[functions.f]\ncommand = [\"x\"]\nsecrets = [\"../creds\"]\n", `f.toml:3: functions.f: secrets: invalid secret name "../creds"`},
		{"EnvSecretName", "[services.s]\ncommand = [\"x\"]\nenv_secrets = { PW = \"No\" }\n", `f.toml:3: services.s: env_secrets: PW: invalid secret name "No"`},
		{"EnvSecretTwice", "[services.s]\ncommand = [\"x\"]\nenv = { PW = \"x\" }\nenv_secrets = { PW = \"pw\" }\n", "services.s: env_secrets: PW is also in env: set it in one place"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("/x/f.toml", []byte(tc.toml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
