package config

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// LabelQueueMaxInflight bounds how many asynchronous calls of one function run at once,
// named in the style of OpenFaaS's scaling labels.
const LabelQueueMaxInflight = "com.openfaas.queue.max-inflight"

// Queue defaults a user sees when a key of [queue] is left out.
const (
	DefaultQueueMaxMessages  = 100_000
	DefaultQueueMaxBytes     = 1 << 30
	DefaultQueueMaxBodyBytes = 4 << 20
	DefaultQueueMaxInflight  = 5
	DefaultQueueMaxAttempts  = 5

	// maxQueueBodyBytes keeps a stored call (body plus at most 1 MiB of headers) within
	// what a NATS server accepts as one message.
	maxQueueBodyBytes = 63 << 20
)

// Queue holds the [queue] table: asynchronous invocations (/async-function/*).
type Queue struct {
	Enabled bool
	// URL of an external NATS server with JetStream ("nats://host:4222"), shared by every
	// faasd host that points at it. Empty: an embedded server storing in STATE/queue.
	URL string
	// Listen lets the embedded server accept NATS clients on this address too (other
	// hosts, the nats CLI). Empty: in-process connections only, no port at all.
	Listen string
	Fsync  bool // sync every stored call to disk before 202, not only on a timer

	MaxMessages  int64 // calls waiting or running, over all functions; more get 429
	MaxBytes     int64 // bytes of those calls
	MaxBodyBytes int64 // largest body of one asynchronous call; larger get 413

	MaxInflight     int           // calls of one function at once, unless its label says
	MaxAttempts     int           // tries of a call, and of its callback, before it fails
	RetryBase       time.Duration // first retry delay, doubled for each further try
	RetryMax        time.Duration // longest retry delay
	AckWait         time.Duration // a call taken by a host that died runs again after this
	CallbackTimeout time.Duration // one POST to a callback URL
	CallbackAllow   CallbackAllow // where callbacks may go
}

type rawQueue struct {
	Enabled         *bool     `toml:"enabled"`
	URL             *string   `toml:"url"`
	Listen          *string   `toml:"listen"`
	Fsync           *bool     `toml:"fsync"`
	MaxMessages     *int64    `toml:"max_messages"`
	MaxBytes        *int64    `toml:"max_bytes"`
	MaxBodyBytes    *int64    `toml:"max_body_bytes"`
	MaxInflight     *int      `toml:"max_inflight"`
	MaxAttempts     *int      `toml:"max_attempts"`
	RetryBase       *Duration `toml:"retry_base"`
	RetryMax        *Duration `toml:"retry_max"`
	AckWait         *Duration `toml:"ack_wait"`
	CallbackTimeout *Duration `toml:"callback_timeout"`
	CallbackAllow   *[]string `toml:"callback_allow"`
}

func (r rawQueue) resolve(g Gateway) (Queue, error) {
	q := Queue{
		Enabled:         or(r.Enabled, true),
		URL:             or(r.URL, ""),
		Listen:          or(r.Listen, ""),
		Fsync:           or(r.Fsync, false),
		MaxMessages:     or(r.MaxMessages, int64(DefaultQueueMaxMessages)),
		MaxBytes:        or(r.MaxBytes, int64(DefaultQueueMaxBytes)),
		MaxBodyBytes:    or(r.MaxBodyBytes, int64(DefaultQueueMaxBodyBytes)),
		MaxInflight:     or(r.MaxInflight, DefaultQueueMaxInflight),
		MaxAttempts:     or(r.MaxAttempts, DefaultQueueMaxAttempts),
		RetryBase:       dur(r.RetryBase, time.Second),
		RetryMax:        dur(r.RetryMax, time.Minute),
		AckWait:         dur(r.AckWait, 30*time.Second),
		CallbackTimeout: dur(r.CallbackTimeout, 30*time.Second),
	}
	// The gateway's cap applies to asynchronous calls too; an invalid one is the
	// gateway's error, not the queue's.
	if r.MaxBodyBytes == nil && g.MaxBodyBytes > 0 {
		q.MaxBodyBytes = min(q.MaxBodyBytes, g.MaxBodyBytes)
	}
	allow, err := parseCallbackAllow(r.CallbackAllow)
	if err != nil {
		return q, err
	}
	q.CallbackAllow = allow
	if q.URL != "" {
		u, err := url.Parse(q.URL)
		if err != nil || (u.Scheme != "nats" && u.Scheme != "tls") || u.Host == "" {
			return q, fmt.Errorf("url: %q is not a NATS URL (want nats://host:4222)", q.URL)
		}
		if q.Listen != "" {
			return q, errors.New("listen: only for the embedded server; leave it out with url")
		}
	}
	switch {
	case q.MaxMessages <= 0:
		return q, errors.New("max_messages: must be positive")
	case q.MaxBytes <= 0:
		return q, errors.New("max_bytes: must be positive")
	case q.MaxBodyBytes <= 0 || q.MaxBodyBytes > maxQueueBodyBytes:
		return q, fmt.Errorf("max_body_bytes: must be between 1 and %d", maxQueueBodyBytes)
	case q.MaxBodyBytes > q.MaxBytes:
		return q, errors.New("max_body_bytes: must not exceed max_bytes")
	case q.MaxInflight < 1 || q.MaxInflight > 1000:
		return q, errors.New("max_inflight: must be between 1 and 1000")
	case q.MaxAttempts < 1:
		return q, errors.New("max_attempts: must be at least 1")
	case q.RetryMax < q.RetryBase:
		return q, errors.New("retry_max: must not be shorter than retry_base")
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"retry_base", q.RetryBase}, {"ack_wait", q.AckWait}, {"callback_timeout", q.CallbackTimeout}} {
		if d.v <= 0 {
			return q, fmt.Errorf("%s: must be positive", d.key)
		}
	}
	if q.AckWait < time.Second {
		return q, errors.New("ack_wait: must be at least 1s")
	}
	return q, nil
}

// parseMaxInflight reads the queue label of a function; 0 means the [queue] default.
func parseMaxInflight(labels map[string]string) (int, error) {
	v, ok := labels[LabelQueueMaxInflight]
	if !ok {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 1000 {
		return 0, fmt.Errorf("label %s = %q: want an integer between 1 and 1000", LabelQueueMaxInflight, v)
	}
	return n, nil
}
