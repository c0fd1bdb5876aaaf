package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// version and commit are set at build time with -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = "unknown"
)

// errUsage marks a command line that could not be understood; flag has said why.
var errUsage = errors.New("usage")

func exitCode(err error) int {
	if errors.Is(err, errUsage) {
		return 2
	}
	return 1
}

// command is one subcommand.
type command interface {
	flags(fs *flag.FlagSet)
	run(ctx context.Context, env *environment, args []string) error
}

// environment is what a command may touch of the outside world, injected for tests.
type environment struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

var commands = map[string]struct {
	new     func() command
	summary string
	example string
}{
	"serve":    {func() command { return &serveCmd{} }, "run the daemon", "faasd serve -f faasd.toml"},
	"watchdog": {func() command { return &watchdogCmd{} }, "serve one classic function (run by the daemon inside a replica)", "fprocess=sha512sum PORT=8081 faasd watchdog"},
	"version":  {func() command { return &versionCmd{} }, "print the version", "faasd version"},
}

func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	env := &environment{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	entry, ok := commands[args[0]]
	if !ok {
		usage(stderr)
		return fmt.Errorf("%w: unknown command %q", errUsage, args[0])
	}
	cmd := entry.new()
	fs := flag.NewFlagSet("faasd "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "faasd %s: %s\n\nExample:\n  %s\n\nFlags:\n", args[0], entry.summary, entry.example)
		fs.PrintDefaults()
	}
	cmd.flags(fs)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	return cmd.run(ctx, env, fs.Args())
}

func usage(w io.Writer) {
	var b strings.Builder
	b.WriteString("faasd: functions and microservices as supervised processes behind one port\n\nCommands:\n")
	for _, name := range []string{"serve", "version", "watchdog"} {
		fmt.Fprintf(&b, "  %-9s %s\n", name, commands[name].summary)
	}
	b.WriteString("\nRun 'faasd COMMAND --help' for a command's flags.\n")
	io.WriteString(w, b.String())
}

type versionCmd struct{}

func (*versionCmd) flags(*flag.FlagSet) {}

func (*versionCmd) run(_ context.Context, env *environment, _ []string) error {
	fmt.Fprintf(env.stdout, "faasd %s\n", version)
	return nil
}
