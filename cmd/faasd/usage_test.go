package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Help that was asked for goes to stdout (so that `| less` pages it) and succeeds; a
// command line that cannot be understood says so on stderr, with exit status 2.
func TestHelpOnStdoutUsageErrorsOnStderr(t *testing.T) {
	c := newCLI(t)
	for _, tc := range []struct {
		args           []string
		code           int
		stdout, stderr string // each must appear; "" where nothing may
	}{
		{[]string{"--help"}, 0, "  invoke    call a function", ""},
		{[]string{"-h"}, 0, "Run 'faasd COMMAND --help'", ""},
		{[]string{"help"}, 0, "  serve     run the daemon", ""},
		{[]string{"list", "--help"}, 0, "faasd list: list the functions\n\nExample:\n  faasd list -v\n\nFlags:\n", ""},
		{[]string{"up", "-h"}, 0, "  -filter pattern", ""},
		{[]string{"help", "invoke"}, 0, "faasd invoke: call a function", ""},
		{[]string{"scale", "hello", "--help"}, 0, "-replicas int", ""},
		{nil, 2, "", "Commands:\n"},
		{[]string{"frobnicate"}, 2, "", `unknown command "frobnicate"`},
		{[]string{"help", "frobnicate"}, 2, "", `unknown command "frobnicate"`},
		{[]string{"list", "--bogus"}, 2, "", "flag provided but not defined: -bogus\nfaasd list: list the functions"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := c.run("", tc.args...)
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, tc.code, r.stdout, r.stderr)
			}
			for _, out := range []struct{ name, got, want string }{{"stdout", r.stdout, tc.stdout}, {"stderr", r.stderr, tc.stderr}} {
				if out.want == "" && out.got != "" {
					t.Errorf("%s: want nothing, got:\n%s", out.name, out.got)
				}
				if !strings.Contains(out.got, out.want) {
					t.Errorf("%s lacks %q:\n%s", out.name, out.want, out.got)
				}
			}
		})
	}
}

// invoke reads the body from standard input, and says so only where someone may be
// typing it: on a terminal, not on /dev/null, a pipe or a file.
func TestInvokePromptsForTheBodyOnlyOnATerminal(t *testing.T) {
	gw := startGateway(t)
	c := newCLI(t)
	c.env["OPENFAAS_URL"] = gw.url
	const prompt = "Reading the body from standard input"
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	pw.WriteString("piped")
	pw.Close()
	terminal := openTerminal(t, "typed\n\x04") // Ctrl-D at the start of a line ends the input
	for _, tc := range []struct {
		name   string
		stdin  io.Reader
		body   string
		prompt bool
	}{
		{"a terminal", terminal, "typed\n", true},
		{"/dev/null", devNull, "", false},
		{"a pipe", pr, "piped", false},
		{"a reader", strings.NewReader("text"), "text", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb strings.Builder
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := run(ctx, []string{"invoke", "file-fn"}, func(k string) string { return c.env[k] }, tc.stdin, &out, &errb)
			if err != nil {
				t.Fatalf("invoke: %v\n%s", err, errb.String())
			}
			if want := "POST /  " + tc.body; out.String() != want {
				t.Errorf("answer %q, want %q", out.String(), want)
			}
			if got := strings.Contains(errb.String(), prompt); got != tc.prompt {
				t.Errorf("prompted: %v, want %v; stderr: %q", got, tc.prompt, errb.String())
			}
		})
	}
}

// openTerminal opens a pseudo-terminal whose input is typed, and returns its terminal end.
func openTerminal(t *testing.T, typed string) *os.File {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { ptmx.Close() })
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tty.Close() })
	if _, err := ptmx.WriteString(typed); err != nil {
		t.Fatal(err)
	}
	return tty
}
