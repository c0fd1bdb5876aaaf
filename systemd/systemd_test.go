package systemd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"faasd/config"
)

// listen makes a notification socket the way systemd does, and points NOTIFY_SOCKET at it.
func listen(t *testing.T) *net.UnixConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return conn
}

func receive(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no notification: %v", err)
	}
	return string(buf[:n])
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestNotifications(t *testing.T) {
	conn := listen(t)
	n := NewNotifier(discard())
	if !n.Enabled() {
		t.Fatal("not enabled with NOTIFY_SOCKET set")
	}
	n.Ready("serving 2 functions")
	if got := receive(t, conn); got != "READY=1\nSTATUS=serving 2 functions" {
		t.Errorf("ready: %q", got)
	}
	n.Status("serving 2 functions") // unchanged: not sent
	n.Status("serving 3 functions")
	if got := receive(t, conn); got != "STATUS=serving 3 functions" {
		t.Errorf("status: %q", got)
	}
	var now unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &now)
	n.Reloading()
	got := receive(t, conn)
	var usec int64
	if _, err := fmt.Sscanf(got, "RELOADING=1\nMONOTONIC_USEC=%d\nSTATUS=reloading", &usec); err != nil || usec < now.Nano()/1000 {
		t.Errorf("reloading: %q (%v), clock was %d", got, err, now.Nano()/1000)
	}
	n.Stopping()
	if got := receive(t, conn); got != "STOPPING=1\nSTATUS=stopping" {
		t.Errorf("stopping: %q", got)
	}
}

func TestNotifierWithoutSystemdDoesNothing(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n := NewNotifier(discard())
	if n.Enabled() {
		t.Fatal("enabled without NOTIFY_SOCKET")
	}
	n.Ready("x")
	n.Watchdog(context.Background(), nil) // returns at once
}

func TestWatchdogPingsWhileHealthy(t *testing.T) {
	conn := listen(t)
	t.Setenv("WATCHDOG_USEC", "200000")
	n := NewNotifier(discard())
	healthy := make(chan error, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Watchdog(ctx, func(context.Context) error { return <-healthy }); close(done) }()

	healthy <- nil
	if got := receive(t, conn); got != "WATCHDOG=1" {
		t.Errorf("ping: %q", got)
	}
	// A failed check sends nothing; the next one, sooner than half the interval, does.
	healthy <- errors.New("gateway does not answer")
	healthy <- nil
	start := time.Now()
	if got := receive(t, conn); got != "WATCHDOG=1" {
		t.Errorf("ping after a failure: %q", got)
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Errorf("next ping after %v", waited)
	}
	cancel()
	close(healthy)
	<-done
}

func TestJournalLinesHaveAPriorityAndNoTime(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "stream")
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	unix.Fstat(int(f.Fd()), &st)
	stream := fmt.Sprintf("%d:%d", st.Dev, st.Ino)
	getenv := func(k string) string {
		if k == "JOURNAL_STREAM" {
			return stream
		}
		return ""
	}
	log := slog.New(LogHandler(f, getenv, &slog.HandlerOptions{Level: slog.LevelDebug})).With("function", "hello")
	log.Info("replica ready", "replica", 1)
	log.WithGroup("req").Warn("slow", "path", "/x")
	log.Error("exited", "err", "line one\nline two")
	log.Debug("tick")
	f.Seek(0, io.SeekStart)
	data, _ := io.ReadAll(f)
	want := `<6>level=INFO msg="replica ready" function=hello replica=1
<4>level=WARN msg=slow function=hello req.path=/x
<3>level=ERROR msg=exited function=hello err="line one\nline two"
<7>level=DEBUG msg=tick function=hello
`
	if string(data) != want {
		t.Errorf("got\n%s\nwant\n%s", data, want)
	}
}

func TestLinesKeepTheirTimeOffTheJournal(t *testing.T) {
	var buf bytes.Buffer
	// JOURNAL_STREAM set, but stderr was redirected elsewhere: not the journal.
	slog.New(LogHandler(&buf, func(string) string { return "8:1234" }, nil)).Info("hi")
	if !strings.HasPrefix(buf.String(), "time=") {
		t.Errorf("line %q", buf.String())
	}
}

func TestUnitNamesItsPartsAndTheDefaultConfigParses(t *testing.T) {
	u := Unit("/opt/faasd/bin/faasd", "/etc/faasd/faasd.toml")
	for _, want := range []string{
		"Type=notify\n", "NotifyAccess=main\n", "ExecStart=/opt/faasd/bin/faasd serve -f /etc/faasd/faasd.toml\n",
		"ExecReload=/bin/kill -HUP $MAINPID\n", "Restart=on-failure\n", "Delegate=yes\n", "KillMode=mixed\n",
		"WatchdogSec=30s\n", "WantedBy=multi-user.target\n",
	} {
		if !strings.Contains(u, want) {
			t.Errorf("unit lacks %q", want)
		}
	}
	cfg, err := config.Parse(ConfigPath, []byte(DefaultConfig))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Gateway.StateDir != StateDir || cfg.Gateway.Listen != "127.0.0.1:8080" {
		t.Errorf("gateway %+v", cfg.Gateway)
	}
}
