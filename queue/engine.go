package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"faasd/config"
)

// The streams, and the subjects their messages go to; the last token is the function's
// name (a DNS-1123 label, so always a valid token).
const (
	callStream     = "FAASD_CALLS" // calls waiting or running
	callSubject    = "faasd.calls."
	resultStream   = "FAASD_RESULTS" // answers waiting for their callback
	resultSubject  = "faasd.results."
	failureStream  = "FAASD_FAILED" // calls and callbacks that failed for good
	failureSubject = "faasd.failed."

	// Failures are a listing for people, not a second queue: the newest few are kept.
	maxFailures   = 1000
	failureMaxAge = 7 * 24 * time.Hour

	// headerRoom is what a stored call may add to its body: the request's headers (the
	// gateway accepts 1 MiB of them) and the call's own fields.
	headerRoom = 1<<20 + 4<<10
)

// engine is a connection to a NATS server with JetStream, embedded or not, and the streams
// the queue keeps in it.
type engine struct {
	srv      *server.Server // nil for an external server
	nc       *nats.Conn
	js       jetstream.JetStream
	calls    jetstream.Stream
	results  jetstream.Stream
	failures jetstream.Stream
}

func (e *engine) name() string {
	if e.srv != nil {
		return "nats-embedded"
	}
	return "nats"
}

// startEngine starts an embedded server storing in dir, or connects to cfg.URL, and
// creates or updates the streams.
func startEngine(ctx context.Context, cfg config.Queue, dir string, log *slog.Logger) (*engine, error) {
	e := &engine{}
	var err error
	if cfg.URL == "" {
		if e.srv, err = startServer(cfg, dir, log); err != nil {
			return nil, err
		}
		e.nc, err = nats.Connect("", nats.InProcessServer(e.srv), nats.Name("faasd"), nats.MaxReconnects(-1))
	} else {
		e.nc, err = nats.Connect(cfg.URL, nats.Name("faasd"), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(false),
			nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn("queue: disconnected from NATS", "err", err) }),
			nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("queue: reconnected to NATS", "url", nc.ConnectedUrl()) }))
	}
	if err != nil {
		e.close()
		return nil, fmt.Errorf("queue: connect: %w", err)
	}
	if e.js, err = jetstream.New(e.nc); err != nil {
		e.close()
		return nil, fmt.Errorf("queue: %w", err)
	}
	if err := e.createStreams(ctx, cfg); err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

func startServer(cfg config.Queue, dir string, log *slog.Logger) (*server.Server, error) {
	opts := &server.Options{
		ServerName: "faasd",
		JetStream:  true,
		StoreDir:   dir,
		// A stored call is its body plus headers; the default 1 MiB is too small.
		MaxPayload: int32(cfg.MaxBodyBytes + headerRoom),
		SyncAlways: cfg.Fsync,
		NoSigs:     true,
		DontListen: cfg.Listen == "",
	}
	if cfg.Listen != "" {
		host, port, err := splitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("queue: listen: %w", err)
		}
		opts.Host, opts.Port = host, port
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("queue: embedded NATS: %w", err)
	}
	srv.SetLoggerV2(serverLog{log.With("component", "nats")}, false, false, false)
	srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("queue: embedded NATS did not start within 30s")
	}
	return srv, nil
}

func (e *engine) createStreams(ctx context.Context, cfg config.Queue) error {
	streams := []*jetstream.Stream{&e.calls, &e.results, &e.failures}
	for i, want := range streamConfigs(cfg) {
		s, err := e.ensureStream(ctx, want)
		if err != nil {
			return fmt.Errorf("queue: stream %s: %w", want.Name, err)
		}
		*streams[i] = s
	}
	return nil
}

// streamConfigs are the calls, results and failures streams, in that order.
func streamConfigs(cfg config.Queue) []jetstream.StreamConfig {
	maxMsg := int32(cfg.MaxBodyBytes + headerRoom)
	return []jetstream.StreamConfig{
		{
			Name: callStream, Subjects: []string{callSubject + "*"},
			Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage,
			// A full queue refuses new calls (429) rather than dropping accepted ones.
			Discard: jetstream.DiscardNew, MaxMsgs: cfg.MaxMessages, MaxBytes: cfg.MaxBytes,
			MaxMsgSize: maxMsg,
			// A client that sends the same X-Call-Id again within this window (a retry
			// after a lost 202) gets its call stored once.
			Duplicates: 2 * time.Minute,
		},
		{
			Name: resultStream, Subjects: []string{resultSubject + "*"},
			Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage,
			Discard: jetstream.DiscardNew, MaxMsgs: cfg.MaxMessages, MaxBytes: cfg.MaxBytes,
			MaxMsgSize: maxMsg,
		},
		{
			Name: failureStream, Subjects: []string{failureSubject + "*"},
			Retention: jetstream.LimitsPolicy, Storage: jetstream.FileStorage,
			Discard: jetstream.DiscardOld, MaxMsgs: maxFailures, MaxAge: failureMaxAge,
		},
	}
}

// ensureStream creates a stream, or updates one whose settings differ. A stream that is
// already as wanted is left alone: hosts sharing a queue start often, and NATS updating a
// stream while another host adds its consumers to it is a race inside the server.
func (e *engine) ensureStream(ctx context.Context, want jetstream.StreamConfig) (jetstream.Stream, error) {
	s, err := e.js.Stream(ctx, want.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return e.js.CreateStream(ctx, want)
	}
	if err != nil {
		return nil, err
	}
	if sameStream(s.CachedInfo().Config, want) {
		return s, nil
	}
	return e.js.UpdateStream(ctx, want)
}

// sameStream compares the settings createStreams sets; the server fills in defaults
// for those it leaves at zero, which therefore match whatever the server chose.
func sameStream(have, want jetstream.StreamConfig) bool {
	same := func(h, w int64) bool { return w == 0 || h == w }
	return slices.Equal(have.Subjects, want.Subjects) && have.Retention == want.Retention &&
		have.Storage == want.Storage && have.Discard == want.Discard &&
		same(have.MaxMsgs, want.MaxMsgs) && same(have.MaxBytes, want.MaxBytes) &&
		same(int64(have.MaxMsgSize), int64(want.MaxMsgSize)) &&
		same(int64(have.Duplicates), int64(want.Duplicates)) && same(int64(have.MaxAge), int64(want.MaxAge))
}

func (e *engine) close() {
	if e.nc != nil {
		// Flushes acknowledgements still buffered before the connection goes.
		_ = e.nc.FlushTimeout(2 * time.Second)
		e.nc.Close()
	}
	if e.srv != nil {
		e.srv.Shutdown()
		e.srv.WaitForShutdown()
	}
}

// isFull reports whether a publish was refused because the stream is at its limits.
func isFull(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (strings.Contains(apiErr.Description, server.ErrMaxMsgs.Error()) ||
		strings.Contains(apiErr.Description, server.ErrMaxBytes.Error()))
}

// isTooLarge reports whether a publish was refused for its size.
func isTooLarge(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, nats.ErrMaxPayload) ||
		errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum
}

func splitHostPort(addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		return "", 0, fmt.Errorf("port %q: %w", port, err)
	}
	return host, n, nil
}

// serverLog sends the embedded server's log to the daemon's, one level lower: its notices
// are start-up chatter.
type serverLog struct{ log *slog.Logger }

func (l serverLog) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l serverLog) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l serverLog) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l serverLog) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l serverLog) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l serverLog) Tracef(format string, v ...any)  {}
