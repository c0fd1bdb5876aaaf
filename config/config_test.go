package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseDefaultsAndPaths(t *testing.T) {
	cfg, err := Parse("/srv/app/faasd.toml", []byte(`
[gateway]
listen = "127.0.0.1:9999"

[functions.hello]
workdir = "examples/hello"
command = ["./hello", "-v"]
timeout = "2m"
readiness_timeout = 5
labels = { "com.openfaas.scale.min" = "2" }
`))
	if err != nil {
		t.Fatal(err)
	}
	g := cfg.Gateway
	if g.Listen != "127.0.0.1:9999" || g.StateDir != "/srv/app/.faasd" || !g.Auth || g.UpstreamTimeout != 60*time.Second {
		t.Errorf("gateway = %+v", g)
	}
	f := cfg.Functions["hello"]
	if f.Workdir != "/srv/app/examples/hello" || f.LockFile != "/tmp/.lock" || f.User != "" {
		t.Errorf("function = %+v", f)
	}
	if f.Timeout != 2*time.Minute || f.DrainTimeout != 2*time.Minute || f.ReadinessTimeout != 5*time.Second {
		t.Errorf("durations = %v %v %v", f.Timeout, f.DrainTimeout, f.ReadinessTimeout)
	}
	if f.Scale.Min != 2 || f.Scale.Max != 5 || f.Scale.Target != 5 {
		t.Errorf("scale = %+v", f.Scale)
	}
}

func TestParseErrorsNameFileLineAndKey(t *testing.T) {
	for _, tc := range []struct {
		name, toml, want string
	}{
		{"syntax", "[gateway]\nlisten = \n", "f.toml:2:"},
		{"unknown key with suggestion", "[functions.a]\ncommand = [\"x\"]\nlables = {}\n",
			"f.toml:3: functions.a.lables: unknown key (did you mean labels?)"},
		{"unknown gateway key", "[gateway]\n\nlisen = \"x\"\n", "f.toml:3: gateway.lisen: unknown key (did you mean listen?)"},
		{"unknown top-level table", "[functons.a]\ncommand = [\"x\"]\n", "functons"},
		{"wrong type", "[functions.a]\ncommand = \"./x\"\n", "f.toml:2: functions.a.command:"},
		{"bad duration", "[functions.a]\ncommand = [\"x\"]\ntimeout = \"fast\"\n", "f.toml:3: functions.a.timeout: not a duration"},
		{"invalid name", "[functions.Bad_Name]\ncommand = [\"x\"]\n", "f.toml:1: functions.Bad_Name: invalid function name"},
		{"dot in name", "[functions.\"a.b\"]\ncommand = [\"x\"]\n", "invalid function name"},
		{"no command", "\n[functions.a]\nenv = {}\n", "f.toml:2: functions.a: command or fprocess: one is required"},
		{"both", "[functions.a]\ncommand = [\"x\"]\nfprocess = \"cat\"\n", "set only one"},
		{"bad label", "[functions.a]\ncommand = [\"x\"]\nlabels = { \"com.openfaas.scale.max\" = \"many\" }\n",
			"f.toml:3: functions.a: labels: label com.openfaas.scale.max = \"many\": not an integer"},
		{"min above max", "[functions.a]\ncommand = [\"x\"]\nlabels = { \"com.openfaas.scale.min\" = \"3\", \"com.openfaas.scale.max\" = \"2\" }\n", "is above"},
		{"lock outside tmp", "[functions.a]\ncommand = [\"x\"]\nlock_file = \"/var/run/a.lock\"\n", "f.toml:3: functions.a: lock_file:"},
		{"host clash", "[functions.a]\ncommand = [\"x\"]\nhosts = [\"x.com\"]\n[functions.b]\ncommand = [\"x\"]\nhosts = [\"X.com\"]\n", "claimed by both"},
		{"negative body", "[gateway]\nmax_body_bytes = -1\n", "f.toml:2: gateway: max_body_bytes: must be positive"},
		{"lock file is /tmp itself", "[functions.a]\ncommand = [\"x\"]\nlock_file = \"/tmp/..\"\n", "f.toml:3: functions.a: lock_file:"},
		{"host is localhost", "[functions.a]\ncommand = [\"x\"]\nhosts = [\"ok.example\", \"localhost\"]\n",
			"f.toml:3: functions.a: hosts: \"localhost\" names this machine (localhost): it reaches the gateway itself"},
		{"host is a loopback address", "[functions.a]\ncommand = [\"x\"]\nhosts = [\"127.1\"]\n", "f.toml:3: functions.a: hosts: \"127.1\" is a loopback address"},
		{"host is the listen host", "[gateway]\nlisten = \"gw.example:80\"\n[functions.a]\ncommand = [\"x\"]\nhosts = [\"gw.example\"]\n", "f.toml:5: functions.a: hosts: \"gw.example\" is the gateway's own name"},
		{"admin_listen is listen", "[gateway]\nlisten = \"127.0.0.1:1\"\nadmin_listen = \"127.0.0.1:1\"\n", "f.toml:3: gateway: admin_listen: must differ from listen"},
		{"admin_listen empty", "[gateway]\nadmin_listen = \"\"\n", "f.toml:2: gateway: admin_listen: must not be empty"},
		{"api_users blank", "[gateway]\napi_users = [\"app\", \" \"]\n", "f.toml:2: gateway: api_users: \" \" is not an account name"},
		{"api_users not a list", "[gateway]\napi_users = \"app\"\n", "f.toml:2: gateway.api_users:"},
		{"user_range not a range", "[gateway]\n\nuser_range = \"70000\"\n", "f.toml:3: gateway: user_range: \"70000\" is not a range: want FIRST-LAST"},
		{"user_range not numbers", "[gateway]\nuser_range = \"a-b\"\n", "f.toml:2: gateway: user_range: \"a-b\" is not a range"},
		{"user_range backwards", "[gateway]\nuser_range = \"80000-70000\"\n", "f.toml:2: gateway: user_range: \"80000-70000\" starts above its end"},
		{"user_range over system accounts", "[gateway]\nuser_range = \"500-2000\"\n", "f.toml:2: gateway: user_range: 500-2000 overlaps 0-999, system accounts"},
		{"user_range over systemd's dynamic users", "[gateway]\nuser_range = \"61000-62000\"\n", "overlaps 61184-65519, systemd's dynamic service accounts"},
		{"user_range over nobody", "[gateway]\nuser_range = \"65530-65540\"\n", "overlaps 65534-65535"},
		{"user_range over containers", "[gateway]\nuser_range = \"500000-600000\"\n", "overlaps 524288-1879048191"},
		{"user_range above 2^31", "[gateway]\nuser_range = \"2147483648-2147483700\"\n", "ids from 2^31 up"},
		{"user_range not a string", "[gateway]\nuser_range = 70000\n", "f.toml:2: gateway.user_range:"},
		{"trusted_proxies not a prefix", "[gateway]\n\ntrusted_proxies = [\"10.0.0.0/8\", \"proxy.example\"]\n",
			"f.toml:3: gateway: trusted_proxies: \"proxy.example\" is not an address or a CIDR prefix"},
		{"trusted_proxies bad bits", "[gateway]\ntrusted_proxies = [\"10.0.0.0/33\"]\n", "f.toml:2: gateway: trusted_proxies: \"10.0.0.0/33\""},
		{"negative max_conns_per_client", "[gateway]\nmax_conns_per_client = -1\n", "f.toml:2: gateway: max_conns_per_client: must not be negative"},
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

func TestGatewayAPIUsersAndAdminListen(t *testing.T) {
	cfg, err := Parse("/x/f.toml", []byte("[gateway]\nadmin_listen = \"127.0.0.1:8081\"\napi_users = [\"app\", \"root\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	g := cfg.Gateway
	if g.AdminListen != "127.0.0.1:8081" {
		t.Errorf("admin_listen %q", g.AdminListen)
	}
	for user, want := range map[string]bool{"": true, "app": true, "root": true, "daemon": false, "App": false} {
		if g.AllowsAPIUser(user) != want {
			t.Errorf("AllowsAPIUser(%q) = %v", user, !want)
		}
	}
	// Root only when named: a list without it does not allow it.
	if (Gateway{APIUsers: []string{"app"}}).AllowsAPIUser("root") || (Gateway{}).AllowsAPIUser("root") {
		t.Error("root allowed without being named in api_users")
	}
	other := g
	other.APIUsers = []string{"app"}
	if !g.Equal(cfg.Gateway) || g.Equal(other) {
		t.Error("Gateway.Equal does not compare api_users")
	}
}

func TestGatewayUserRange(t *testing.T) {
	for text, want := range map[string]IDRange{
		"":                                   DefaultUserRange,
		"user_range = \"20000-29999\"\n":     {20000, 29999},
		"user_range = \" 70000 - 70000 \"\n": {70000, 70000},
	} {
		cfg, err := Parse("/x/f.toml", []byte("[gateway]\n"+text))
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		if cfg.Gateway.UserRange != want {
			t.Errorf("%q: range %v, want %v", text, cfg.Gateway.UserRange, want)
		}
	}
	if r := DefaultUserRange; r.Size() != 34464 || !r.Contains(65536) || !r.Contains(99999) || r.Contains(100000) {
		t.Errorf("default range %v holds %d ids", r, r.Size())
	}
}

func TestGatewayTrustedProxiesAndConnectionCap(t *testing.T) {
	cfg, err := Parse("/x/f.toml", []byte("[gateway]\ntrusted_proxies = [\"10.1.2.3/8\", \"192.0.2.7\", \"::ffff:198.51.100.0/120\", \"2001:db8::/32\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range cfg.Gateway.TrustedProxies {
		got = append(got, p.String())
	}
	if want := []string{"10.0.0.0/8", "192.0.2.7/32", "198.51.100.0/24", "2001:db8::/32"}; !slices.Equal(got, want) {
		t.Errorf("trusted_proxies %v, want %v", got, want)
	}
	if cfg.Gateway.MaxConnsPerClient != DefaultMaxConnsPerClient {
		t.Errorf("max_conns_per_client %d by default", cfg.Gateway.MaxConnsPerClient)
	}
	cfg, err = Parse("/x/f.toml", []byte("[gateway]\nmax_conns_per_client = 0\n"))
	if err != nil || cfg.Gateway.MaxConnsPerClient != 0 {
		t.Fatalf("max_conns_per_client = 0: %v %v", cfg, err)
	}
}

func TestLoadRepositoryConfig(t *testing.T) {
	path := filepath.Join("..", "faasd.toml")
	if _, err := os.Stat(path); err != nil {
		t.Skip("no root faasd.toml")
	}
	if _, err := Load(path); err != nil {
		t.Fatal(err)
	}
}

func TestScalePolicyFromLabels(t *testing.T) {
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   ScalePolicy
		err    string
	}{
		{"defaults", nil, DefaultScalePolicy, ""},
		{"min raises default max", map[string]string{LabelScaleMin: "8"},
			ScalePolicy{Min: 8, Max: 8, Type: ScaleRPS, Target: 5, TargetProportion: 0.9, ZeroDuration: 5 * time.Minute}, ""},
		{"all", map[string]string{LabelScaleMin: "0", LabelScaleMax: "3", LabelScaleZero: "true", LabelScaleZeroDuration: "30s",
			LabelScaleType: "capacity", LabelScaleTarget: "10", LabelScaleTargetProportion: "0.5"},
			ScalePolicy{Min: 0, Max: 3, Zero: true, ZeroDuration: 30 * time.Second, Type: ScaleCapacity, Target: 10, TargetProportion: 0.5}, ""},
		{"zero-duration seconds", map[string]string{LabelScaleZeroDuration: "90"},
			ScalePolicy{Min: 1, Max: 5, Type: ScaleRPS, Target: 5, TargetProportion: 0.9, ZeroDuration: 90 * time.Second}, ""},
		{"bad type", map[string]string{LabelScaleType: "cpu"}, ScalePolicy{}, "com.openfaas.scale.type"},
		{"bad zero", map[string]string{LabelScaleZero: "yes please"}, ScalePolicy{}, "com.openfaas.scale.zero"},
		{"proportion above 1", map[string]string{LabelScaleTargetProportion: "1.5"}, ScalePolicy{}, "target-proportion"},
		{"negative min", map[string]string{LabelScaleMin: "-1"}, ScalePolicy{}, "com.openfaas.scale.min"},
		{"max zero", map[string]string{LabelScaleMin: "0", LabelScaleMax: "0"}, ScalePolicy{}, "at least 1"},
		{"other labels ignored", map[string]string{"app": "x"}, DefaultScalePolicy, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseScalePolicy(DefaultScalePolicy, tc.labels)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// Every problem of the file is reported at once, in the order of the lines; a table
// with a value of the wrong type is not validated further, since its zero values would
// only add problems that are not there.
func TestParseReportsEveryProblemAtOnceInLineOrder(t *testing.T) {
	_, err := Parse("/x/f.toml", []byte(`[gateway]
max_body_bytes = -1
lisen = "x"

[functions.a]
command = "./server"
user = 42
labels = { "com.openfaas.scale.max" = 3 }

[functions.b]
fprocess = "cat"
timeout = true
labels = { "com.openfaas.scale.zero-durations" = "1m" } # not checked: b has a type error

[functions.c]
fprocess = "cat"
labels = { "com.openfaas.scale.zero-durations" = "1m" }

[services.db]
command = ["./db"]
ready_tcp = "nowhere"
`))
	var list Errors
	if !errors.As(err, &list) {
		t.Fatalf("error = %v, want Errors", err)
	}
	want := []string{
		`/x/f.toml:2: gateway: max_body_bytes: must be positive`,
		`/x/f.toml:3: gateway.lisen: unknown key (did you mean listen?)`,
		`/x/f.toml:6: functions.a.command: want a list of strings such as ["a", "b"], not the string "./server"`,
		`/x/f.toml:7: functions.a.user: want a string, not the number 42`,
		`/x/f.toml:8: functions.a.labels: want a table of strings such as { KEY = "value" }, but "com.openfaas.scale.max" is the number 3`,
		`/x/f.toml:12: functions.b.timeout: want a duration such as "30s" or a number of seconds, not true`,
		`/x/f.toml:17: functions.c: labels: label com.openfaas.scale.zero-durations: unknown com.openfaas label (did you mean com.openfaas.scale.zero-duration?)`,
		`/x/f.toml:21: services.db: ready_tcp: "nowhere" is not a host:port address such as "127.0.0.1:3306"`,
	}
	got := strings.Split(err.Error(), "\n")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", err, strings.Join(want, "\n"))
	}
}

func TestGatewayScaleDefaults(t *testing.T) {
	cfg, err := Parse("/x/f.toml", []byte(`[gateway]
scale_defaults = { "zero-duration" = "15m", max = "8" }

[functions.sleepy]
fprocess = "cat"
labels = { "com.openfaas.scale.zero" = "true" }

[functions.own]
fprocess = "cat"
labels = { "com.openfaas.scale.zero-duration" = "2m" }
`))
	if err != nil {
		t.Fatal(err)
	}
	if p := cfg.Functions["sleepy"].Scale; !p.Zero || p.ZeroDuration != 15*time.Minute || p.Max != 8 || p.Min != 1 {
		t.Errorf("sleepy = %+v, want the gateway's zero-duration and max", p)
	}
	if p := cfg.Functions["own"].Scale; p.ZeroDuration != 2*time.Minute || p.Max != 8 {
		t.Errorf("own = %+v, want its own zero-duration over the gateway's", p)
	}
	_, err = Parse("/x/f.toml", []byte("[gateway]\nscale_defaults = { \"zero-duraton\" = \"1m\" }\n"))
	if err == nil || !strings.Contains(err.Error(), "f.toml:2: gateway: scale_defaults: label com.openfaas.scale.zero-duraton: unknown com.openfaas label (did you mean com.openfaas.scale.zero-duration?)") {
		t.Errorf("a typo in scale_defaults = %v", err)
	}
}
