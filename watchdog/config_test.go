package watchdog

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestConfigFromEnv(t *testing.T) {
	t.Parallel()
	defaults := Config{
		Port:          9000,
		Process:       "cat",
		Argv:          []string{"cat"},
		LockFile:      "/tmp/.lock",
		ReadTimeout:   30 * time.Second,
		WriteTimeout:  30 * time.Second,
		MaxBodyBytes:  32 << 20,
		CGIHeaders:    true,
		CombineOutput: true,
	}
	tests := []struct {
		name string
		env  map[string]string
		want func(c *Config)
	}{
		{"defaults", nil, func(c *Config) {}},
		{"http_port when PORT is unset", map[string]string{"PORT": "", "http_port": "9100"},
			func(c *Config) { c.Port = 9100 }},
		{"classic port as last resort", map[string]string{"PORT": "", "port": "9200"},
			func(c *Config) { c.Port = 9200 }},
		{"PORT wins over port", map[string]string{"port": "8080"}, func(c *Config) {}},
		{"fprocess split on single spaces", map[string]string{"fprocess": "cat /var/openfaas/secrets/x"},
			func(c *Config) {
				c.Process = "cat /var/openfaas/secrets/x"
				c.Argv = []string{"cat", "/var/openfaas/secrets/x"}
			}},
		{"no shell quoting", map[string]string{"fprocess": `sh -c 'exit 3'`},
			func(c *Config) {
				c.Process = `sh -c 'exit 3'`
				c.Argv = []string{"sh", "-c", "'exit", "3'"}
			}},
		{"double space is an empty argument", map[string]string{"fprocess": "printf  x"},
			func(c *Config) { c.Process = "printf  x"; c.Argv = []string{"printf", "", "x"} }},
		{"surrounding whitespace trimmed", map[string]string{"fprocess": " sha512sum\n"},
			func(c *Config) { c.Process = "sha512sum"; c.Argv = []string{"sha512sum"} }},
		{"TMPDIR holds the lock file", map[string]string{"TMPDIR": "/run/r1/tmp"},
			func(c *Config) { c.LockFile = "/run/r1/tmp/.lock" }},
		{"timeouts in seconds and as durations", map[string]string{
			"read_timeout": "5", "write_timeout": "1m30s", "exec_timeout": "250ms", "healthcheck_interval": "0"},
			func(c *Config) {
				c.ReadTimeout, c.WriteTimeout, c.ExecTimeout = 5*time.Second, 90*time.Second, 250*time.Millisecond
			}},
		{"limits", map[string]string{"max_inflight": "4", "max_body_bytes": "1Mi"},
			func(c *Config) { c.MaxInflight, c.MaxBodyBytes = 4, 1<<20 }},
		{"body limit in bytes, 0 disables", map[string]string{"max_body_bytes": "0"},
			func(c *Config) { c.MaxBodyBytes = 0 }},
		{"switches", map[string]string{
			"cgi_headers": "false", "combine_output": "0", "marshal_request": "true", "write_debug": "1",
			"debug_headers": "TRUE", "suppress_lock": "true", "content_type": "application/json"},
			func(c *Config) {
				c.CGIHeaders, c.CombineOutput = false, false
				c.MarshalRequest, c.WriteDebug, c.DebugHeaders, c.SuppressLock = true, true, true, true
				c.ContentType = "application/json"
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"PORT": "9000", "fprocess": "cat"}
			for k, v := range tt.env {
				env[k] = v
			}
			got, err := ConfigFromEnv(func(k string) string { return env[k] })
			if err != nil {
				t.Fatalf("ConfigFromEnv: %v", err)
			}
			want := defaults
			want.Argv = append([]string(nil), defaults.Argv...)
			tt.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestConfigFromEnvRejectsBadValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		wantErr []string // substrings of the error
	}{
		{"no port", map[string]string{"PORT": ""}, []string{"PORT is not set"}},
		{"port not a number", map[string]string{"PORT": "http"}, []string{`PORT="http"`, "1-65535"}},
		{"port out of range", map[string]string{"PORT": "70000"}, []string{`PORT="70000"`}},
		{"port zero", map[string]string{"PORT": "", "http_port": "0"}, []string{`http_port="0"`}},
		{"no fprocess", map[string]string{"fprocess": "  "}, []string{"fprocess is not set"}},
		{"bad duration", map[string]string{"exec_timeout": "soon"}, []string{`exec_timeout="soon"`}},
		{"negative duration", map[string]string{"read_timeout": "-5"}, []string{`read_timeout="-5"`}},
		{"bad bool", map[string]string{"combine_output": "yes please"}, []string{`combine_output="yes please"`}},
		{"bad inflight", map[string]string{"max_inflight": "-1"}, []string{`max_inflight="-1"`}},
		{"bad size", map[string]string{"max_body_bytes": "10MB"}, []string{`max_body_bytes="10MB"`}},
		{"every problem at once", map[string]string{"PORT": "", "fprocess": "", "write_timeout": "x"},
			[]string{"PORT is not set", "fprocess is not set", `write_timeout="x"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"PORT": "9000", "fprocess": "cat"}
			for k, v := range tt.env {
				env[k] = v
			}
			_, err := ConfigFromEnv(func(k string) string { return env[k] })
			if err == nil {
				t.Fatal("ConfigFromEnv succeeded, want an error")
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
}
