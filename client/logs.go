package client

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"faasd/api"
)

// LogQuery selects a function's log lines.
type LogQuery struct {
	Name     string
	Follow   bool      // keep streaming new lines until the context ends
	Tail     int       // only the last Tail lines of the history; -1 or 0: all
	Since    time.Time // only lines from then on; zero: all
	Instance string    // one replica's lines; empty: all
}

// LogStream is an open GET /system/logs: one api.LogMessage a line (NDJSON).
type LogStream struct {
	body io.ReadCloser
	sc   *bufio.Scanner
	msg  api.LogMessage
	err  error
}

// Logs opens a function's log stream; the caller closes it. An unknown function is a
// *StatusError with status 404.
func (g *Gateway) Logs(ctx context.Context, q LogQuery) (*LogStream, error) {
	v := url.Values{"name": {q.Name}, "follow": {strconv.FormatBool(q.Follow)}, "tail": {strconv.Itoa(q.Tail)}}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339))
	}
	if q.Instance != "" {
		v.Set("instance", q.Instance)
	}
	resp, err := g.Do(ctx, http.MethodGet, "/system/logs?"+v.Encode(), nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return nil, &StatusError{Status: resp.StatusCode, Body: string(b)}
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	return &LogStream{body: resp.Body, sc: sc}, nil
}

// Next reads the next message; false at the end of the stream or at an error (see Err).
func (s *LogStream) Next() bool {
	if s.err != nil || !s.sc.Scan() {
		return false
	}
	s.msg = api.LogMessage{}
	if err := json.Unmarshal(s.sc.Bytes(), &s.msg); err != nil {
		s.err = fmt.Errorf("a line that is not a log message: %w", err)
		return false
	}
	return true
}

// Message is the message Next read.
func (s *LogStream) Message() api.LogMessage { return s.msg }

// Line is the message Next read, as the gateway sent it.
func (s *LogStream) Line() []byte { return s.sc.Bytes() }

// Err is what ended the stream early, if anything.
func (s *LogStream) Err() error {
	if s.err != nil {
		return s.err
	}
	return s.sc.Err()
}

// Close ends the stream.
func (s *LogStream) Close() error { return s.body.Close() }
