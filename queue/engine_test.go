package queue

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"faasd/config"
)

// The settings the server stores for each stream, its defaults filled in, compare as the
// same as those asked for, so that a restart with unchanged settings updates no stream
// (hosts sharing a queue restart often, and a stream update racing another host's new
// consumer is a race inside the NATS server); changed settings do update them.
func TestStreamsAreUpdatedOnlyWhenTheirSettingsChange(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := config.Queue{Enabled: true, MaxMessages: 10, MaxBytes: 1 << 20, MaxBodyBytes: 1 << 10, MaxInflight: 1, MaxAttempts: 1}
	e, err := startEngine(context.Background(), cfg, dir, log)
	if err != nil {
		t.Fatal(err)
	}
	defer e.close()
	wanted := streamConfigs(cfg)
	for i, s := range []jetstream.Stream{e.calls, e.results, e.failures} {
		info, err := s.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if !sameStream(info.Config, wanted[i]) {
			t.Errorf("stream %s as stored %+v does not compare as the same as asked %+v", wanted[i].Name, info.Config, wanted[i])
		}
	}
	changed := cfg
	changed.MaxMessages = 20
	if sameStream(streamConfigs(cfg)[0], streamConfigs(changed)[0]) {
		t.Error("a changed limit compares as the same")
	}
}
