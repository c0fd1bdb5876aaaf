package watchdog

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Defaults, as in the current classic watchdog unless noted.
const (
	// DefaultTimeout is the default read_timeout and write_timeout.
	DefaultTimeout = 30 * time.Second

	// DefaultMaxBodyBytes caps a request body. The classic watchdog has no cap and buffers
	// the whole body in memory; one huge upload should not be able to take the replica down.
	DefaultMaxBodyBytes = 32 << 20
)

// Config is everything the watchdog needs. ConfigFromEnv builds it from the environment the
// way the classic watchdog reads its own; tests and embedders may fill it by hand, but note
// that the zero value is not the default (CGIHeaders and CombineOutput default to true).
type Config struct {
	// Port is where Run listens, on 127.0.0.1. Serve ignores it and uses its listener.
	Port int

	// Process is the fprocess command line verbatim, as shown in log lines.
	Process string
	// Argv is Process split on single spaces: no shell, no quoting. Argv[0] is looked up in
	// PATH unless it contains a slash (then it is used as is, relative to the working directory).
	Argv []string
	// Env is the environment every child inherits before the Http_* variables are appended.
	// Nil means the watchdog's own environment (os.Environ) at the time Serve starts.
	Env []string

	// LockFile is written once the server accepts connections and removed first on shutdown.
	LockFile string
	// SuppressLock skips the lock file; /_/health then always answers 503.
	SuppressLock bool

	// ReadTimeout and WriteTimeout are the HTTP server limits (0 = none). A child still running
	// when the write deadline passes can no longer be answered, so it is killed then.
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	// ExecTimeout kills a child's whole process group and answers 408 (0 = none).
	ExecTimeout time.Duration
	// HealthcheckInterval is how long to keep serving after the lock file is removed on
	// shutdown, before draining, so that probes notice (0 = drain at once).
	HealthcheckInterval time.Duration

	// MaxInflight answers 429 to requests beyond this many concurrent ones (0 = no limit).
	MaxInflight int
	// MaxBodyBytes answers 413 to larger request bodies (0 = no limit).
	MaxBodyBytes int64

	// ContentType, when set, is the Content-Type of every successful response.
	ContentType string
	// CGIHeaders appends the Http_* variables to each child's environment.
	CGIHeaders bool
	// CombineOutput sends stderr to the response along with stdout; otherwise stderr is logged.
	CombineOutput bool
	// MarshalRequest sends a JSON envelope of headers and body on stdin instead of the body.
	MarshalRequest bool
	// WriteDebug logs each child's output, and a "Duration" line instead of the "Wrote" line.
	WriteDebug bool
	// DebugHeaders logs request and response headers.
	DebugHeaders bool
}

// ConfigFromEnv reads the configuration through getenv (os.Getenv in production).
//
// Variables: PORT (else http_port, else port; required), fprocess (required), TMPDIR (where
// .lock goes, default /tmp, as os.TempDir), read_timeout, write_timeout, exec_timeout,
// healthcheck_interval, max_inflight, max_body_bytes, content_type, cgi_headers,
// combine_output, marshal_request, write_debug, debug_headers, suppress_lock.
//
// Unlike the classic watchdog, which silently falls back to a default on a value it cannot
// parse, every malformed value is an error: a typo in a timeout should stop the replica with
// a message, not run it with a limit nobody asked for.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	cfg := Config{
		ReadTimeout:   DefaultTimeout,
		WriteTimeout:  DefaultTimeout,
		MaxBodyBytes:  DefaultMaxBodyBytes,
		CGIHeaders:    true,
		CombineOutput: true,
	}
	var errs []error

	port, err := portFromEnv(getenv)
	if err != nil {
		errs = append(errs, err)
	}
	cfg.Port = port

	// The whole value is trimmed so that a trailing newline from an env file or a heredoc
	// does not become an empty argument; inside it, single spaces separate arguments exactly
	// as the classic watchdog does, so two spaces still pass an empty argument.
	cfg.Process = strings.TrimSpace(getenv("fprocess"))
	if cfg.Process == "" {
		errs = append(errs, errors.New("fprocess is not set: it must hold the command to fork for each request, e.g. fprocess=cat"))
	} else {
		cfg.Argv = strings.Split(cfg.Process, " ")
	}

	tmp := getenv("TMPDIR")
	if tmp == "" {
		tmp = "/tmp" // what os.TempDir answers on Unix when TMPDIR is empty
	}
	cfg.LockFile = filepath.Join(tmp, ".lock")

	durations := []struct {
		name string
		dst  *time.Duration
	}{
		{"read_timeout", &cfg.ReadTimeout},
		{"write_timeout", &cfg.WriteTimeout},
		{"exec_timeout", &cfg.ExecTimeout},
		{"healthcheck_interval", &cfg.HealthcheckInterval},
	}
	for _, d := range durations {
		if v := getenv(d.name); v != "" {
			parsed, err := parseDuration(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", d.name, v, err))
				continue
			}
			*d.dst = parsed
		}
	}

	if v := getenv("max_inflight"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			errs = append(errs, fmt.Errorf("max_inflight=%q: want a whole number >= 0 (0 = no limit)", v))
		}
		cfg.MaxInflight = n
	}
	if v := getenv("max_body_bytes"); v != "" {
		n, err := parseSize(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("max_body_bytes=%q: %w", v, err))
		}
		cfg.MaxBodyBytes = n
	}

	cfg.ContentType = getenv("content_type")

	bools := []struct {
		name string
		dst  *bool
	}{
		{"cgi_headers", &cfg.CGIHeaders},
		{"combine_output", &cfg.CombineOutput},
		{"marshal_request", &cfg.MarshalRequest},
		{"write_debug", &cfg.WriteDebug},
		{"debug_headers", &cfg.DebugHeaders},
		{"suppress_lock", &cfg.SuppressLock},
	}
	for _, b := range bools {
		if v := getenv(b.name); v != "" {
			parsed, err := strconv.ParseBool(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: want true or false", b.name, v))
				continue
			}
			*b.dst = parsed
		}
	}

	if err := errors.Join(errs...); err != nil {
		return Config{}, fmt.Errorf("watchdog config: %w", err)
	}
	return cfg, nil
}

// portFromEnv prefers PORT, which the supervisor sets, and accepts http_port and the classic
// watchdog's own "port" as fallbacks. There is no default: the classic default 8080 is the
// gateway's port, and replicas sharing one host must never fight over a fixed port.
func portFromEnv(getenv func(string) string) (int, error) {
	for _, name := range []string{"PORT", "http_port", "port"} {
		v := getenv(name)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 65535 {
			return 0, fmt.Errorf("%s=%q: want a TCP port number 1-65535", name, v)
		}
		return n, nil
	}
	return 0, errors.New("PORT is not set: it must hold the loopback TCP port to listen on")
}

// parseDuration accepts what the classic watchdog accepts: whole seconds ("30") or a Go
// duration ("1m30s").
func parseDuration(v string) (time.Duration, error) {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, errors.New("want a duration >= 0")
		}
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, errors.New(`want whole seconds ("30") or a Go duration ("1m30s")`)
	}
	if d < 0 {
		return 0, errors.New("want a duration >= 0")
	}
	return d, nil
}

// parseSize reads a byte count, optionally with the binary suffixes OpenFaaS users know from
// memory limits: "1048576", "512Ki", "32Mi", "1Gi".
func parseSize(v string) (int64, error) {
	mult := int64(1)
	num := v
	for _, s := range []struct {
		suffix string
		mult   int64
	}{{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}} {
		if strings.HasSuffix(v, s.suffix) {
			num, mult = strings.TrimSuffix(v, s.suffix), s.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, errors.New(`want a byte count >= 0, optionally with Ki, Mi or Gi ("32Mi"); 0 = no limit`)
	}
	return n * mult, nil
}

// validate checks a Config built by hand; ConfigFromEnv's output always passes.
func (c *Config) validate() error {
	switch {
	case len(c.Argv) == 0 || c.Argv[0] == "":
		return errors.New("watchdog config: no command to fork (fprocess is empty)")
	case !c.SuppressLock && c.LockFile == "":
		return errors.New("watchdog config: no lock file path (set LockFile or SuppressLock)")
	case c.ReadTimeout < 0 || c.WriteTimeout < 0 || c.ExecTimeout < 0 || c.HealthcheckInterval < 0:
		return errors.New("watchdog config: negative timeout")
	case c.MaxInflight < 0 || c.MaxBodyBytes < 0:
		return errors.New("watchdog config: negative limit")
	}
	return nil
}
