// Package systemd is the daemon's edge toward systemd: the unit `faasd install` writes,
// the notifications of the service protocol (ready, reloading, stopping, status, the
// watchdog), and log lines fit for the journal. It is used by cmd/faasd only; nothing
// below knows whether systemd runs the daemon.
package systemd

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Notifier speaks sd_notify to the service manager that started the daemon. Without
// NOTIFY_SOCKET (not under systemd, or not Type=notify) every call does nothing.
type Notifier struct {
	log     *slog.Logger
	enabled bool

	mu     sync.Mutex
	status string // last STATUS= sent, to send only changes
}

// NewNotifier reads NOTIFY_SOCKET once. It stays in the environment, where the library
// reads it on every message; replicas and services never see it, because they get an
// environment of their own, not the daemon's.
func NewNotifier(log *slog.Logger) *Notifier {
	return &Notifier{log: log, enabled: os.Getenv("NOTIFY_SOCKET") != ""}
}

// Enabled reports whether a service manager listens.
func (n *Notifier) Enabled() bool { return n.enabled }

func (n *Notifier) send(lines ...string) {
	if !n.enabled {
		return
	}
	if _, err := daemon.SdNotify(false, strings.Join(lines, "\n")); err != nil {
		n.log.Warn("sd_notify", "err", err)
	}
}

// Ready says the daemon serves: at start once services and functions are up, and at the
// end of a reload.
func (n *Notifier) Ready(status string) {
	n.mu.Lock()
	n.status = status
	n.mu.Unlock()
	n.send(daemon.SdNotifyReady, "STATUS="+status)
}

// Reloading says a reload began; Ready must follow. The timestamp tells systemd which
// reload this is (systemd.service(5), Type=notify-reload).
func (n *Notifier) Reloading() {
	n.send(daemon.SdNotifyReloading, strings.TrimSuffix(daemon.SdNotifyMonotonicUsec(), "\n"), "STATUS=reloading")
}

// Stopping says the daemon began to stop.
func (n *Notifier) Stopping() {
	n.send(daemon.SdNotifyStopping, "STATUS=stopping")
}

// Status shows a line in `systemctl status`, if it changed.
func (n *Notifier) Status(status string) {
	n.mu.Lock()
	changed := status != n.status
	n.status = status
	n.mu.Unlock()
	if changed {
		n.send("STATUS=" + status)
	}
}

// Watchdog pings systemd at half the interval of WatchdogSec= (WATCHDOG_USEC) for as
// long as ctx lives and healthy passes; a daemon that stops answering is restarted by
// systemd. After a failed check it checks again sooner, so that one slow answer does not
// cost a restart. Without a watchdog it returns at once.
func (n *Notifier) Watchdog(ctx context.Context, healthy func(context.Context) error) {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		n.log.Warn("systemd watchdog", "err", err)
		return
	}
	if interval <= 0 || !n.enabled {
		return
	}
	wait := time.Duration(0)
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		check, cancel := context.WithTimeout(ctx, interval/4)
		err := healthy(check)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			n.log.Warn("watchdog: health check failed, systemd not told we are alive", "err", err)
			wait = interval / 8
			continue
		}
		n.send(daemon.SdNotifyWatchdog)
		wait = interval / 2
	}
}
