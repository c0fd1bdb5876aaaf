package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"faasd/client"
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
	q := client.LogQuery{Name: name, Follow: c.follow, Tail: c.tail}
	if c.since != "" {
		if q.Since, err = parseSince(c.since, time.Now()); err != nil {
			return fmt.Errorf("%w: --since: %w", errUsage, err)
		}
	}
	gw, err := c.client.connect(env)
	if err != nil {
		return err
	}
	stream, err := gw.Logs(ctx, q)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return notFound(err, "function", name)
	}
	defer stream.Close()
	for stream.Next() {
		if c.json {
			fmt.Fprintf(env.stdout, "%s\n", stream.Line())
			continue
		}
		m := stream.Message()
		fmt.Fprintf(env.stdout, "%s %s (%s) %s\n", m.Timestamp.Local().Format(time.RFC3339Nano), m.Name, m.Instance, m.Text)
	}
	if err := stream.Err(); err != nil && ctx.Err() == nil {
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
