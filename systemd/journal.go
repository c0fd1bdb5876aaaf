package systemd

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"golang.org/x/sys/unix"
)

// LogHandler is the daemon's log handler: slog's text lines on w. When w is the
// journal's stream (JOURNAL_STREAM names its device and inode, as systemd sets it), each
// line goes without a time, which the journal records itself, and starts with a
// syslog priority ("<4>" for a warning), which the journal takes as the entry's
// PRIORITY, so that `journalctl -u faasd -p warning` filters. slog writes one line per
// record, newlines in values quoted, so every event is one journal entry.
func LogHandler(w io.Writer, getenv func(string) string, opts *slog.HandlerOptions) slog.Handler {
	if !IsJournal(w, getenv) {
		return slog.NewTextHandler(w, opts)
	}
	o := slog.HandlerOptions{}
	if opts != nil {
		o = *opts
	}
	replace := o.ReplaceAttr
	o.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		if replace != nil {
			return replace(groups, a)
		}
		return a
	}
	out := &prefixWriter{w: w}
	return &journalHandler{inner: slog.NewTextHandler(out, &o), out: out, mu: &sync.Mutex{}}
}

// IsJournal reports whether w is the stream systemd connected to the journal.
func IsJournal(w io.Writer, getenv func(string) string) bool {
	stream := getenv("JOURNAL_STREAM")
	f, ok := w.(interface{ Fd() uintptr })
	if stream == "" || !ok {
		return false
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return stream == fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

// journalHandler puts the record's priority in front of the line the text handler
// writes for it.
type journalHandler struct {
	inner slog.Handler
	out   *prefixWriter
	mu    *sync.Mutex // shared by the handlers derived with attributes or groups
}

func (h *journalHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h *journalHandler) Handle(ctx context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.out.prefix = priority(r.Level)
	return h.inner.Handle(ctx, r)
}

func (h *journalHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &journalHandler{inner: h.inner.WithAttrs(attrs), out: h.out, mu: h.mu}
}

func (h *journalHandler) WithGroup(name string) slog.Handler {
	return &journalHandler{inner: h.inner.WithGroup(name), out: h.out, mu: h.mu}
}

// priority is sd-daemon(3)'s prefix for a level.
func priority(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "<3>"
	case l >= slog.LevelWarn:
		return "<4>"
	case l >= slog.LevelInfo:
		return "<6>"
	default:
		return "<7>"
	}
}

// prefixWriter writes a prefix and the line in one write, so that lines of concurrent
// writers never interleave.
type prefixWriter struct {
	w      io.Writer
	prefix string
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.buf = append(append(p.buf[:0], p.prefix...), b...)
	if _, err := p.w.Write(p.buf); err != nil {
		return 0, err
	}
	return len(b), nil
}
