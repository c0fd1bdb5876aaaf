package config

import (
	"strings"
	"testing"
	"time"
)

func TestQueueDefaultsAndLabel(t *testing.T) {
	cfg, err := Parse("/srv/faasd.toml", []byte(`
[gateway]
max_body_bytes = 1048576

[functions.a]
command = ["x"]
labels = { "com.openfaas.queue.max-inflight" = "12" }

[functions.b]
command = ["x"]
`))
	if err != nil {
		t.Fatal(err)
	}
	q := cfg.Queue
	if !q.Enabled || q.URL != "" || q.Listen != "" || q.Fsync || q.MaxInflight != 5 || q.MaxAttempts != 5 || q.AckWait != 30*time.Second {
		t.Errorf("queue = %+v", q)
	}
	// The queue's body limit never exceeds the gateway's.
	if q.MaxBodyBytes != 1<<20 || q.MaxMessages != 100_000 || q.MaxBytes != 1<<30 {
		t.Errorf("limits = %d %d %d", q.MaxBodyBytes, q.MaxMessages, q.MaxBytes)
	}
	if cfg.Functions["a"].MaxInflight != 12 || cfg.Functions["b"].MaxInflight != 0 {
		t.Errorf("max inflight = %d, %d", cfg.Functions["a"].MaxInflight, cfg.Functions["b"].MaxInflight)
	}
}

func TestQueueErrorsNameFileLineAndKey(t *testing.T) {
	for _, tc := range []struct {
		name, toml, want string
	}{
		{"unknown key", "[queue]\n\nmax_inflght = 3\n", "/srv/f.toml:3: queue.max_inflght: unknown key (did you mean max_inflight?)"},
		{"wrong type", "[queue]\nmax_messages = \"many\"\n", "/srv/f.toml:2: queue.max_messages:"},
		{"zero messages", "[queue]\nmax_messages = 0\n", "/srv/f.toml:2: queue: max_messages: must be positive"},
		{"body over what NATS takes", "[queue]\nmax_body_bytes = 100000000\n", "/srv/f.toml:2: queue: max_body_bytes: must be between"},
		{"body over the queue", "[queue]\nmax_bytes = 1000\nmax_body_bytes = 2000\n", "/srv/f.toml:3: queue: max_body_bytes: must not exceed max_bytes"},
		{"retry max below base", "[queue]\nretry_base = \"10s\"\nretry_max = \"1s\"\n", "/srv/f.toml:3: queue: retry_max:"},
		{"not a NATS URL", "[queue]\nurl = \"http://nats:4222\"\n", "/srv/f.toml:2: queue: url: \"http://nats:4222\" is not a NATS URL"},
		{"listen with url", "[queue]\nurl = \"nats://n:4222\"\nlisten = \"127.0.0.1:4222\"\n", "/srv/f.toml:3: queue: listen:"},
		{"short ack wait", "[queue]\nack_wait = \"10ms\"\n", "/srv/f.toml:2: queue: ack_wait: must be at least 1s"},
		{"bad label", "[functions.a]\ncommand = [\"x\"]\nlabels = { \"com.openfaas.queue.max-inflight\" = \"0\" }\n",
			"/srv/f.toml:3: functions.a: labels: label com.openfaas.queue.max-inflight = \"0\": want an integer between 1 and 1000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("/srv/f.toml", []byte(tc.toml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
