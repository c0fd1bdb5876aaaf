package testkit

import (
	"bytes"
	"log/slog"
	"maps"
	"testing"
	"time"
)

func TestParseLogLineReadsWhatSlogWrites(t *testing.T) {
	for _, attrs := range []map[string]string{
		{"function": "hello-go", "replica": "3"},
		{"function": "x", "err": `exit status 1: "quoted" and \ backslash`},
		{"after": "1.5ms", "path": "/var/tmp/a b", "empty": ""},
		{"text": "line=with=equals", "unicode": "é ✓"},
	} {
		var b bytes.Buffer
		log := slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				a.Value = slog.TimeValue(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
			}
			return a
		}}))
		var args []any
		for k, v := range attrs {
			args = append(args, k, v)
		}
		log.Info("replica ready", args...)
		got := ParseLogLine(b.String()[:b.Len()-1])
		want := maps.Clone(attrs)
		want["time"], want["level"], want["msg"] = "2026-01-02T03:04:05.000Z", "INFO", "replica ready"
		if !maps.Equal(got, want) {
			t.Errorf("ParseLogLine(%q) = %q, want %q", b.String(), got, want)
		}
	}
	if got := ParseLogLine(`msg="cut sh`); got["msg"] != "cut sh" {
		t.Errorf("an unterminated quote: %q", got)
	}
}
