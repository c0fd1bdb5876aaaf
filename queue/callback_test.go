package queue

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"faasd/config"
)

func allowing(t *testing.T, entries ...string) config.CallbackAllow {
	t.Helper()
	if entries == nil {
		return config.CallbackAllow{}
	}
	toml := "[queue]\ncallback_allow = [\"" + strings.Join(entries, `", "`) + "\"]\n"
	cfg, err := config.Parse("/srv/faasd.toml", []byte(toml))
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Queue.CallbackAllow
}

func TestCallbackDialRefusesWhatTheListDoesNot(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())

	for _, tc := range []struct {
		name  string
		allow []string
		addr  string
	}{
		{"a name resolving to loopback when only 10.0.0.0/8 is allowed", []string{"10.0.0.0/8"}, "localhost:" + port},
		{"a link-local address, with no list", nil, "169.254.169.254:80"},
		{"a link-local address, whatever else is allowed", []string{"0.0.0.0/0", "localhost"}, "169.254.169.254:80"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dial := allowedDial(allowing(t, tc.allow...))
			conn, err := dial(context.Background(), "tcp", tc.addr)
			if err == nil {
				conn.Close()
				t.Fatalf("dialed %s", tc.addr)
			}
			if !errors.Is(err, config.ErrCallbackRefused) {
				t.Errorf("error %v, want a refusal", err)
			}
		})
	}

	// The listener got none of the connections refused above: the first one it accepts
	// is one that is allowed.
	conn, err := allowedDial(allowing(t, "127.0.0.1"))(context.Background(), "tcp", "localhost:"+port)
	if err != nil {
		t.Fatalf("an allowed address: %v", err)
	}
	defer conn.Close()
	got, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	if got.RemoteAddr().String() != conn.LocalAddr().String() {
		t.Errorf("the listener accepted %s first, want the allowed connection from %s", got.RemoteAddr(), conn.LocalAddr())
	}
}

func TestARefusedCallbackFailsAtOnce(t *testing.T) {
	var posts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		posts.Add(1)
		http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()

	for _, tc := range []struct {
		name  string
		allow []string
		want  string
		posts int32
	}{
		{"an address the list does not name", []string{"10.0.0.0/8"}, "callback refused: 127.0.0.1 is not in [queue] callback_allow", 0},
		{"a redirect is not followed, even where it is allowed", []string{"127.0.0.1", "169.254.169.254"}, "callback answered 307", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			posts.Store(0)
			sink := &memSink{}
			n := notifier{client: callbackClient(config.Queue{CallbackTimeout: 5 * time.Second, CallbackAllow: allowing(t, tc.allow...)}),
				sink: sink, retry: Retry{MaxAttempts: 3, Base: time.Second, Max: time.Minute},
				now: time.Now, stats: stats{metrics.NewSet()}, log: slog.New(slog.DiscardHandler)}
			data, _ := encode(&Result{CallID: "id-1", Function: "fn", CallbackURL: srv.URL + "/done", Status: 200}, []byte("answer"))
			d := &fakeDelivery{data: data, delivered: 1}
			n.handle(context.Background(), d)
			if d.outcome != "ack" || len(sink.failures) != 1 {
				t.Fatalf("outcome %q with %d failures, want a failure recorded at the first attempt", d.outcome, len(sink.failures))
			}
			if f := sink.failures[0]; f.Stage != "callback" || f.Attempts != 1 || !strings.Contains(f.Error, tc.want) {
				t.Errorf("failure %+v, want %q", f, tc.want)
			}
			if got := posts.Load(); got != tc.posts {
				t.Errorf("the callback server got %d posts, want %d", got, tc.posts)
			}
		})
	}
}
