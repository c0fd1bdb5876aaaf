package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"faasd/api"
)

// logsCmd prints a function's output from the daemon's buffer, and with --follow keeps
// printing it as it comes.
type logsCmd struct {
	client clientFlags
	follow bool
	since  string
	tail   int
	json   bool
}

func (c *logsCmd) flags(fs *flag.FlagSet) {
	c.client.register(fs)
	fs.BoolVar(&c.follow, "follow", false, "keep printing new lines until interrupted")
	fs.BoolVar(&c.follow, "F", false, "same as --follow")
	fs.StringVar(&c.since, "since", "", "only lines of the last `D` (\"10m\"), or since an RFC 3339 time")
	fs.IntVar(&c.tail, "tail", -1, "only the last `N` lines of the history (-1: all)")
	fs.BoolVar(&c.json, "json", false, "print the gateway's NDJSON messages")
}

func (c *logsCmd) run(ctx context.Context, env *environment, args []string) error {
	ctx, stop := interruptible(ctx)
	defer stop()
	name, err := oneName("logs", args)
	if err != nil {
		return err
	}
	q := url.Values{"name": {name}, "follow": {strconv.FormatBool(c.follow)}, "tail": {strconv.Itoa(c.tail)}}
	if c.since != "" {
		since, err := parseSince(c.since, time.Now())
		if err != nil {
			return fmt.Errorf("%w: --since: %w", errUsage, err)
		}
		q.Set("since", since.UTC().Format(time.RFC3339))
	}
	gw, err := c.client.connect(env)
	if err != nil {
		return err
	}
	resp, err := gw.request(ctx, "GET", "/system/logs?"+q.Encode(), nil, true)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return notFound(&apiError{Status: resp.StatusCode, Body: string(b)}, "function", name)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		if c.json {
			fmt.Fprintf(env.stdout, "%s\n", sc.Bytes())
			continue
		}
		var m api.LogMessage
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			return fmt.Errorf("logs of %s: a line that is not a log message: %w", name, err)
		}
		fmt.Fprintf(env.stdout, "%s %s (%s) %s\n", m.Timestamp.Local().Format(time.RFC3339Nano), m.Name, m.Instance, m.Text)
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("logs of %s: %w", name, err)
	}
	return nil
}

// parseSince reads --since: a duration back from now, or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("%q: want a positive duration", s)
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither a duration (10m) nor an RFC 3339 time", s)
	}
	return t, nil
}
