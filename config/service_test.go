package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseServiceDefaultsAndPaths(t *testing.T) {
	cfg, err := Parse("/srv/app/faasd.toml", []byte(`
[gateway]
state_dir = "/var/lib/faasd"

[services.db]
workdir = "examples/db"
command = ["./run.sh"]
init = ["./init.sh", "--fresh"]
env = { DB_PORT = "3307" }
user = "mysql"
ready_tcp = "127.0.0.1:3307"

[services.cache]
command = ["cache-server"]
ready_command = ["cache-cli", "ping"]
ready_timeout = "5s"
stop_grace = 3

[functions.app]
command = ["./app"]
depends_on = ["db", "cache"]
`))
	if err != nil {
		t.Fatal(err)
	}
	db := cfg.Services["db"]
	want := &Service{
		Name: "db", Command: []string{"./run.sh"}, Init: []string{"./init.sh", "--fresh"},
		Workdir: "/srv/app/examples/db", Env: map[string]string{"DB_PORT": "3307"}, User: "mysql",
		DataDir: "/var/lib/faasd/services/db", ReadyTCP: "127.0.0.1:3307",
		ReadyTimeout: DefaultServiceReadyTimeout, StopGrace: DefaultServiceStopGrace,
		Limits: Limits{Pids: DefaultPids},
	}
	if !db.Equal(want) {
		t.Errorf("db = %+v\nwant %+v", db, want)
	}
	cache := cfg.Services["cache"]
	if cache.Workdir != "/srv/app" || cache.ReadyTimeout != 5*time.Second || cache.StopGrace != 3*time.Second ||
		!slices.Equal(cache.ReadyCommand, []string{"cache-cli", "ping"}) || cache.Init != nil {
		t.Errorf("cache = %+v", cache)
	}
	if got := cfg.Functions["app"].DependsOn; !slices.Equal(got, []string{"db", "cache"}) {
		t.Errorf("depends_on = %v", got)
	}
	if got := cfg.ServiceNames(); !slices.Equal(got, []string{"cache", "db"}) {
		t.Errorf("service names = %v", got)
	}
}

func TestParseWithoutServices(t *testing.T) {
	cfg, err := Parse("/x/f.toml", []byte("[functions.a]\ncommand = [\"x\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Services == nil || len(cfg.Services) != 0 {
		t.Errorf("services = %#v, want an empty map", cfg.Services)
	}
}

func TestServiceErrorsNameFileLineAndKey(t *testing.T) {
	for _, tc := range []struct {
		name, toml, want string
	}{
		{"unknown key with suggestion", "[services.db]\ncommand = [\"x\"]\nready_tpc = \"127.0.0.1:1\"\n",
			"f.toml:3: services.db.ready_tpc: unknown key (did you mean ready_tcp?)"},
		{"unknown top-level table", "[service.db]\ncommand = [\"x\"]\n", "f.toml:1: service.db: unknown key"},
		{"no command", "[services.db]\n\nenv = {}\n", "f.toml:1: services.db: command: required"},
		{"empty program", "[services.db]\ncommand = [\"\"]\n", "f.toml:2: services.db: command: the program must not be empty"},
		{"empty init", "[services.db]\ncommand = [\"x\"]\ninit = []\n", "f.toml:3: services.db: init: the program must not be empty"},
		{"both readiness checks", "[services.db]\ncommand = [\"x\"]\nready_tcp = \"127.0.0.1:1\"\nready_command = [\"true\"]\n",
			"services.db: ready_tcp and ready_command: set only one"},
		{"bad address", "[services.db]\ncommand = [\"x\"]\nready_tcp = \"3306\"\n", "f.toml:3: services.db: ready_tcp: \"3306\" is not a host:port"},
		{"port out of range", "[services.db]\ncommand = [\"x\"]\nready_tcp = \"127.0.0.1:70000\"\n", "is not a host:port"},
		{"invalid name", "[services.My_DB]\ncommand = [\"x\"]\n", "f.toml:1: services.My_DB: invalid service name"},
		{"bad env", "[services.db]\ncommand = [\"x\"]\nenv = { \"A=B\" = \"1\" }\n", "f.toml:3: services.db: env: invalid variable name"},
		{"bad grace", "[services.db]\ncommand = [\"x\"]\nstop_grace = \"0s\"\n", "f.toml:3: services.db: stop_grace: must be positive"},
		{"wrong type", "[services.db]\ncommand = \"x\"\n", "f.toml:2: services.db.command:"},
		{"unknown dependency", "[services.db]\ncommand = [\"x\"]\n\n[functions.app]\ncommand = [\"x\"]\ndepends_on = [\"dbb\"]\n",
			"f.toml:6: functions.app: depends_on: no service \"dbb\" (services: db)"},
		{"dependency without services", "[functions.app]\ncommand = [\"x\"]\ndepends_on = [\"db\"]\n",
			"f.toml:3: functions.app: depends_on: no service \"db\" (there are no [services])"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("/x/f.toml", []byte(tc.toml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "/x/f.toml") {
				t.Errorf("error %q does not start with the file", err)
			}
		})
	}
}

func TestServiceEqualSeesEveryField(t *testing.T) {
	base := func() *Service {
		return &Service{Name: "db", Command: []string{"x"}, Init: []string{"i"}, Workdir: "/w", Env: map[string]string{"A": "1"},
			User: "u", DataDir: "/d", ReadyTCP: "127.0.0.1:1", ReadyTimeout: time.Second, StopGrace: time.Second}
	}
	if !base().Equal(base()) {
		t.Fatal("a spec differs from its copy")
	}
	for name, change := range map[string]func(*Service){
		"command":       func(s *Service) { s.Command = []string{"y"} },
		"init":          func(s *Service) { s.Init = nil },
		"workdir":       func(s *Service) { s.Workdir = "/v" },
		"env":           func(s *Service) { s.Env = map[string]string{"A": "2"} },
		"user":          func(s *Service) { s.User = "v" },
		"ready_tcp":     func(s *Service) { s.ReadyTCP = "127.0.0.1:2" },
		"ready_command": func(s *Service) { s.ReadyCommand = []string{"true"} },
		"ready_timeout": func(s *Service) { s.ReadyTimeout = 2 * time.Second },
		"stop_grace":    func(s *Service) { s.StopGrace = 2 * time.Second },
	} {
		s := base()
		change(s)
		if s.Equal(base()) {
			t.Errorf("a change of %s goes unnoticed", name)
		}
	}
}
