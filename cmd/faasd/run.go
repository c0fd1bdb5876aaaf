package main

import (
	"bytes"
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
	"serve":     {func() command { return &serveCmd{} }, "run the daemon", "faasd serve -f faasd.toml"},
	"watchdog":  {func() command { return &watchdogCmd{} }, "serve one classic function (run by the daemon inside a replica)", "fprocess=sha512sum PORT=8081 faasd watchdog"},
	"version":   {func() command { return &versionCmd{} }, "print the client's and the gateway's versions", "faasd version --gateway http://127.0.0.1:8080"},
	"install":   {func() command { return &installCmd{} }, "run the daemon as a systemd service (binary, unit, /etc/faasd/faasd.toml)", "sudo faasd install\n  faasd install --print"},
	"uninstall": {func() command { return &uninstallCmd{} }, "remove the systemd service; the config and state stay unless --purge", "sudo faasd uninstall --purge"},

	// The client: every command below talks to a gateway's API, as faas-cli does.
	"login":    {func() command { return &loginCmd{} }, "check credentials and store them for faasd and faas-cli", "echo -n \"$PASSWORD\" | faasd login --username admin --password-stdin\n  faasd login -f faasd.toml    # a local daemon: its generated password"},
	"new":      {func() command { return &newCmd{} }, "create a function from a template and add it to the stack file", "faasd new hello --lang python3\n  faasd new --list"},
	"up":       {func() command { return &upCmd{build: true, deploy: true} }, "build, then deploy the stack's functions (--watch: on every change)", "faasd up -f faasd.toml --filter hello\n  faasd up --watch"},
	"build":    {func() command { return &upCmd{build: true} }, "run the stack's build commands", "faasd build -f faasd.toml --filter hello"},
	"deploy":   {func() command { return &upCmd{deploy: true} }, "deploy the stack's functions as they are built", "faasd deploy -f faasd.toml"},
	"list":     {func() command { return &listCmd{} }, "list the functions", "faasd list -v"},
	"describe": {func() command { return &describeCmd{} }, "show a function's status, replicas, labels and URL", "faasd describe hello"},
	"invoke":   {func() command { return &invokeCmd{} }, "call a function: standard input is the body", "echo faasd | faasd invoke hello --header X-Id=1 --query name=me\n  echo job | faasd invoke hello --async --callback http://127.0.0.1:9000/done"},
	"scale":    {func() command { return &scaleCmd{} }, "set a function's replica count", "faasd scale hello --replicas 3"},
	"logs":     {func() command { return &logsCmd{} }, "print a function's output", "faasd logs hello --since 10m --tail 20 --follow"},
	"remove":   {func() command { return &removeCmd{} }, "remove a deployed function", "faasd remove hello"},
	"export":   {func() command { return &exportCmd{} }, "write an OpenFaaS stack.yml and a Docker build context per function", "faasd export -f faasd.toml -o deploy --registry ghcr.io/acme --tag 1.0"},
	"import":   {func() command { return &importCmd{} }, "add the functions of an OpenFaaS stack.yml to the stack file", "faasd import stack.yml -f faasd.toml"},
	"secret":   {func() command { return &secretCmd{} }, "create, update, list or remove secrets", "echo s3cret | faasd secret create db-password\n  faasd secret update db-password --from-file ./password.txt\n  faasd secret list\n  faasd secret remove db-password"},
}

// commandOrder is how usage lists the commands.
var commandOrder = []string{"serve", "install", "uninstall", "new", "up", "build", "deploy", "list", "describe", "invoke", "scale", "logs", "remove", "secret", "export", "import", "login", "version", "watchdog"}

// run is the whole command line. Help that was asked for (-h, --help, help) goes to
// stdout and succeeds, so that it can be paged; a command line that cannot be understood
// gets its error and the usage on stderr, and exit status 2.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	env := &environment{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		usage(stderr)
		return errUsage
	}
	switch args[0] {
	case "-h", "-help", "--help":
		usage(stdout)
		return nil
	case "help":
		if len(args) == 1 {
			usage(stdout)
			return nil
		}
		args = []string{args[1], "--help"} // faasd help CMD
	}
	entry, ok := commands[args[0]]
	if !ok {
		usage(stderr)
		return fmt.Errorf("%w: unknown command %q", errUsage, args[0])
	}
	cmd := entry.new()
	fs := flag.NewFlagSet("faasd "+args[0], flag.ContinueOnError)
	// flag writes both the help it was asked for and the usage after an error to one
	// output; which of stdout and stderr it belongs on is known once Parse returns.
	var out bytes.Buffer
	fs.SetOutput(&out)
	fs.Usage = func() {
		fmt.Fprintf(&out, "faasd %s: %s\n\nExample:\n  %s\n\nFlags:\n", args[0], entry.summary, entry.example)
		fs.PrintDefaults()
	}
	cmd.flags(fs)
	positional, err := parseFlags(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		_, err := out.WriteTo(stdout)
		return err
	}
	out.WriteTo(stderr)
	if err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	return explain(cmd.run(ctx, env, positional))
}

func usage(w io.Writer) {
	var b strings.Builder
	b.WriteString("faasd: functions and microservices as supervised processes behind one port\n\nCommands:\n")
	for _, name := range commandOrder {
		fmt.Fprintf(&b, "  %-9s %s\n", name, commands[name].summary)
	}
	b.WriteString("\nRun 'faasd COMMAND --help' for a command's flags.\n")
	io.WriteString(w, b.String())
}
