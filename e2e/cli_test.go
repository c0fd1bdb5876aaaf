package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"faasd/internal/testkit"
)

// cli runs the built faasd binary as a user would: in a project folder, with its own
// credentials file, against one daemon.
type cli struct {
	t       *testing.T
	d       *testkit.Daemon
	dir     string   // the working directory
	env     []string // the environment of every command
	cfgDir  string   // OPENFAAS_CONFIG
	gateway string   // appended as --gateway to the client commands, when set
}

func newCLI(t *testing.T, d *testkit.Daemon) *cli {
	t.Helper()
	c := &cli{t: t, d: d, dir: testkit.Dir(t), cfgDir: testkit.Dir(t)}
	if d != nil {
		c.gateway = d.URL
	}
	for _, kv := range os.Environ() {
		// What would steer the CLI elsewhere than the test says.
		if k, _, _ := strings.Cut(kv, "="); k != "OPENFAAS_URL" && k != "OPENFAAS_CONFIG" && k != "CI" {
			c.env = append(c.env, kv)
		}
	}
	c.env = append(c.env, "OPENFAAS_CONFIG="+c.cfgDir)
	return c
}

type cliResult struct {
	stdout, stderr string
	code           int
}

// takesGateway lists the commands that talk to a gateway.
var takesGateway = map[string]bool{"login": true, "up": true, "deploy": true, "list": true, "describe": true,
	"invoke": true, "scale": true, "logs": true, "remove": true, "secret": true, "version": true}

func (c *cli) command(ctx context.Context, stdin string, args ...string) *exec.Cmd {
	if c.gateway != "" && len(args) > 0 && takesGateway[args[0]] && !slices.Contains(args, "--gateway") {
		args = append(args, "--gateway", c.gateway)
	}
	cmd := exec.CommandContext(ctx, filepath.Join(testkit.Bin(c.t), "faasd"), args...)
	cmd.Dir = c.dir
	cmd.Env = c.env
	cmd.Stdin = strings.NewReader(stdin)
	return cmd
}

// run runs one command to its end.
func (c *cli) run(stdin string, args ...string) cliResult {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := c.command(ctx, stdin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := cliResult{stdout: out.String(), stderr: errb.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		c.t.Fatalf("faasd %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// ok runs a command that must succeed and returns its output.
func (c *cli) ok(stdin string, args ...string) string {
	c.t.Helper()
	r := c.run(stdin, args...)
	if r.code != 0 {
		c.t.Fatalf("faasd %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// fail runs a command that must fail with one line on stderr that contains want.
func (c *cli) fail(want string, args ...string) cliResult {
	c.t.Helper()
	r := c.run("", args...)
	if r.code == 0 {
		c.t.Fatalf("faasd %s: succeeded, want an error containing %q\nstdout: %s", strings.Join(args, " "), want, r.stdout)
	}
	if !strings.Contains(r.stderr, want) {
		c.t.Errorf("faasd %s: stderr %q, want it to contain %q", strings.Join(args, " "), r.stderr, want)
	}
	if n := strings.Count(strings.TrimSpace(r.stderr), "\n"); n != 0 {
		c.t.Errorf("faasd %s: the error takes %d lines, want one:\n%s", strings.Join(args, " "), n+1, r.stderr)
	}
	return r
}

// login stores the daemon's credentials for the CLI.
func (c *cli) login() {
	c.t.Helper()
	c.ok(c.d.Password(), "login", "--password-stdin")
}

// writeFile writes a file of the project (readable by the function user).
func (c *cli) writeFile(rel, text string) string {
	c.t.Helper()
	p := filepath.Join(c.dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		c.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		c.t.Fatal(err)
	}
	return p
}

// editFile replaces every old by new in a project file, in place, as an editor saving does.
func (c *cli) editFile(rel, old, new string) {
	c.t.Helper()
	p := filepath.Join(c.dir, rel)
	b, err := os.ReadFile(p)
	if err != nil {
		c.t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old)) {
		c.t.Fatalf("%s does not contain %q", rel, old)
	}
	if err := os.WriteFile(p, bytes.ReplaceAll(b, []byte(old), []byte(new)), 0o644); err != nil {
		c.t.Fatal(err)
	}
}

// invokeUntil invokes a function through the CLI until its answer contains want: right
// after a deploy, the old replicas may still answer while new ones start.
func (c *cli) invokeUntil(name, body, want string) {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		last := c.run(body, "invoke", name)
		if last.code == 0 && strings.Contains(last.stdout, want) {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out after 60s waiting for %s to answer %q; last answer: exit %d, %q, stderr %q", name, want, last.code, last.stdout, last.stderr)
		}
		// Slower than a load that would scale the function out.
		time.Sleep(100 * time.Millisecond)
	}
}

// background is a command left running (logs --follow, up --watch).
type background struct {
	cmd  *exec.Cmd
	out  *testkit.SyncBuffer
	done chan struct{}
	err  error
}

func (c *cli) start(args ...string) *background {
	c.t.Helper()
	b := &background{out: &testkit.SyncBuffer{}, done: make(chan struct{})}
	b.cmd = c.command(context.Background(), "", args...)
	b.cmd.Stdout, b.cmd.Stderr = b.out, b.out
	if err := b.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	go func() {
		b.err = b.cmd.Wait()
		close(b.done)
	}()
	c.t.Cleanup(func() {
		select {
		case <-b.done:
		default:
			b.cmd.Process.Kill()
			<-b.done
		}
	})
	return b
}

// interrupt sends SIGINT, as Ctrl-C does, and waits for the command to exit.
func (b *background) interrupt(t *testing.T) error {
	t.Helper()
	b.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-b.done:
		return b.err
	case <-time.After(30 * time.Second):
		t.Fatalf("still running 30s after SIGINT:\n%s", b.out.String())
		return nil
	}
}

func (b *background) running() bool {
	select {
	case <-b.done:
		return false
	default:
		return true
	}
}

// needRuntimes fails, not skips, when a template's runtime is missing: `make test`
// installs them, and a skipped template would hide a broken one.
func needRuntimes(t *testing.T) {
	t.Helper()
	for _, prog := range []string{"go", "/usr/bin/python3", "node", "ruby"} {
		if _, err := exec.LookPath(prog); err != nil {
			t.Fatalf("%s is missing: install the runtimes (apt-get install python3 nodejs ruby ruby-sinatra puma)", prog)
		}
	}
	if out, err := exec.Command("ruby", "-e", "require 'sinatra/base'; require 'puma'").CombinedOutput(); err != nil {
		t.Fatalf("ruby cannot load sinatra and puma (apt-get install ruby-sinatra puma): %v\n%s", err, out)
	}
}

// Every template: new, up, invoke answers 200 with the template's greeting; a second up is a
// no-op; an edited function rolls over and answers the new way.
func TestCLITemplatesNewUpInvoke(t *testing.T) {
	needRuntimes(t)
	d := testkit.StartDaemon(t, "", testkit.Options{Auth: true})
	c := newCLI(t, d)
	c.login()
	langs := []string{"go", "python3", "node", "ruby", "bash"}
	for _, lang := range langs {
		t.Run(lang, func(t *testing.T) {
			c.t = t
			name := "hi-" + lang
			out := c.ok("", "new", name, "--lang", lang)
			if !strings.Contains(out, "Created "+filepath.Join(c.dir, name)) {
				t.Errorf("new: %q", out)
			}
			out = c.ok("", "up", "--filter", name)
			if !strings.Contains(out, "==> "+name+": deployed: "+d.URL+"/function/"+name) {
				t.Errorf("up: %q", out)
			}
			r := c.run("faasd", "invoke", name)
			if r.code != 0 || r.stdout != "Hello from "+name+"! You said: faasd\n" {
				t.Fatalf("invoke: exit %d, %q, stderr %q\n%s", r.code, r.stdout, r.stderr, d.Log())
			}
			if got := c.ok("", "invoke", name, "--method", "GET"); got != "Hello from "+name+"!\n" {
				t.Errorf("invoke --method GET: %q", got)
			}
		})
	}
	c.t = t
	out := c.ok("", "up")
	for _, lang := range langs {
		if want := "==> hi-" + lang + ": unchanged"; !strings.Contains(out, want) {
			t.Errorf("second up: want %q in\n%s", want, out)
		}
	}
	if !strings.Contains(out, "==> hi-go: building: go build -o handler .") || !strings.Contains(out, "==> hi-go: built in ") {
		t.Errorf("up: want the go build's progress lines in\n%s", out)
	}
	// A changed function rolls over; the others stay as they are.
	c.editFile("hi-go/handler.go", "Hello from", "Howdy from")
	c.editFile("hi-python3/handler.py", "Hello from", "Howdy from")
	out = c.ok("", "up")
	for name, want := range map[string]string{"hi-go": "updated, rolling over", "hi-python3": "updated, rolling over", "hi-node": "unchanged", "hi-ruby": "unchanged"} {
		if !strings.Contains(out, "==> "+name+": "+want) {
			t.Errorf("up after an edit: want %s %q in\n%s", name, want, out)
		}
	}
	c.invokeUntil("hi-go", "x", "Howdy from hi-go! You said: x")
	c.invokeUntil("hi-python3", "x", "Howdy from hi-python3! You said: x")
	// Templates run as the unprivileged function user.
	st := getStatus(t, d, "hi-python3")
	if st.raw["source"] != "api" || st.Annotations["com.faasd.build-hash"] == "" {
		t.Errorf("hi-python3: source %v, annotations %v", st.raw["source"], st.Annotations)
	}
}

// list, describe, invoke's flags, scale, logs (tail, since, follow), remove and version.
func TestCLIFunctionCommands(t *testing.T) {
	d := testkit.StartDaemon(t, "[functions.file-fn]\nfprocess = \"cat\"\n", testkit.Options{Auth: true})
	c := newCLI(t, d)
	c.login()
	c.writeFile("faasd.toml", `
[functions.env-fn]
fprocess = "env"
[functions.fail-fn]
fprocess = "false"
[functions.follow-fn]
fprocess = "cat"
`)
	c.ok("", "new", "echo-fn", "--lang", "bash")
	c.ok("", "up")
	c.invokeUntil("echo-fn", "hi", "Hello from echo-fn! You said: hi")

	t.Run("list", func(t *testing.T) {
		out := c.ok("", "list")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 6 || strings.Join(strings.Fields(lines[0]), " ") != "Function Invocations Replicas" {
			t.Fatalf("list:\n%s", out)
		}
		if f := strings.Fields(lines[1]); f[0] != "echo-fn" || f[1] == "0" || f[2] != "1" {
			t.Errorf("list row %q: want echo-fn with invocations and 1 replica", lines[1])
		}
		out = c.ok("", "list", "-v")
		for _, want := range []string{"Command", "Ready", "Status", "./handler.sh", "ready", "file-fn", "file", "api"} {
			if !strings.Contains(out, want) {
				t.Errorf("list -v: no %q in\n%s", want, out)
			}
		}
		var list []status
		if err := json.Unmarshal([]byte(c.ok("", "list", "--json")), &list); err != nil || len(list) != 5 {
			t.Errorf("list --json: %v, %d functions", err, len(list))
		}
	})
	t.Run("describe", func(t *testing.T) {
		out := c.ok("", "describe", "echo-fn")
		for _, want := range []string{"Name:        echo-fn", "Status:      Ready", "Replicas:    1 desired, 1 ready", "Source:      api",
			"Function process: ./handler.sh", "URL:         " + d.URL + "/function/echo-fn", "faas_function=echo-fn", "com.faasd.build-hash="} {
			if !strings.Contains(strings.Join(strings.Fields(out), " "), strings.Join(strings.Fields(want), " ")) {
				t.Errorf("describe: no %q in\n%s", want, out)
			}
		}
	})
	t.Run("invoke", func(t *testing.T) {
		c.invokeUntil("env-fn", "", "Http_Method=POST")
		out := c.ok("body", "invoke", "env-fn", "--method", "put", "--query", "a=1", "--query", "b=two words", "--header", "X-Test=yes")
		for _, want := range []string{"Http_Method=PUT", "Http_Query=a=1&b=two+words", "Http_X_Test=yes", "Http_Content_Length=4"} {
			if !strings.Contains(out, want) {
				t.Errorf("invoke: no %q in\n%s", want, out)
			}
		}
		r := c.fail("fail-fn answered 500", "invoke", "fail-fn")
		if r.code != 1 || !strings.Contains(r.stdout, "exit status 1") {
			t.Errorf("a failing function: exit %d, body %q", r.code, r.stdout)
		}
	})
	t.Run("scale", func(t *testing.T) {
		if out := c.ok("", "scale", "echo-fn", "--replicas", "2"); out != "Scaled echo-fn to 2 replicas\n" {
			t.Errorf("scale: %q", out)
		}
		testkit.WaitFor(t, 30*time.Second, "2 ready replicas of echo-fn", func() bool {
			st := getStatus(t, d, "echo-fn")
			return st.Replicas == 2 && st.AvailableReplicas == 2
		})
		c.ok("", "scale", "--replicas=0", "echo-fn")
		if st := getStatus(t, d, "echo-fn"); st.Replicas != 0 {
			t.Errorf("scaled to 0, replicas %d", st.Replicas)
		}
	})
	t.Run("logs", func(t *testing.T) {
		out := c.ok("", "logs", "env-fn")
		if !strings.Contains(out, " env-fn (") || !strings.Contains(out, "Forking fprocess.") {
			t.Errorf("logs:\n%s", out)
		}
		if out := c.ok("", "logs", "env-fn", "--tail", "2"); strings.Count(out, "\n") != 2 {
			t.Errorf("logs --tail 2: %d lines\n%s", strings.Count(out, "\n"), out)
		}
		if out := c.ok("", "logs", "env-fn", "--since", "1h"); !strings.Contains(out, "Forking fprocess.") {
			t.Errorf("logs --since 1h:\n%s", out)
		}
		future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		if out := c.ok("", "logs", "env-fn", "--since", future); out != "" {
			t.Errorf("logs --since %s: want nothing, got\n%s", future, out)
		}
		var line map[string]any
		if err := json.Unmarshal([]byte(strings.SplitN(c.ok("", "logs", "env-fn", "--json", "--tail", "1"), "\n", 2)[0]), &line); err != nil || line["name"] != "env-fn" {
			t.Errorf("logs --json: %v %v", line, err)
		}
		follow := c.start("logs", "follow-fn", "--follow", "--gateway", d.URL)
		testkit.WaitFor(t, 20*time.Second, "logs --follow to print the history", func() bool {
			return strings.Contains(follow.out.String(), "follow-fn (")
		})
		if strings.Contains(follow.out.String(), "Wrote") {
			t.Fatalf("follow-fn was never called, yet: %s", follow.out.String())
		}
		c.ok("hello", "invoke", "follow-fn")
		testkit.WaitFor(t, 20*time.Second, "logs --follow to print the call", func() bool {
			return strings.Contains(follow.out.String(), "Wrote 5 Bytes")
		})
		if err := follow.interrupt(t); err != nil {
			t.Errorf("logs --follow after Ctrl-C: %v", err)
		}
	})
	t.Run("remove", func(t *testing.T) {
		if out := c.ok("", "remove", "echo-fn"); out != "Removed echo-fn\n" {
			t.Errorf("remove: %q", out)
		}
		c.fail("no such function: echo-fn", "describe", "echo-fn")
		c.fail("cannot remove file-fn: function file-fn: defined in the configuration file faasd.toml: remove it there", "remove", "file-fn")
	})
	t.Run("version", func(t *testing.T) {
		out := c.ok("", "version")
		for _, want := range []string{"faasd client", "gateway " + d.URL, "provider: faasd-process (processes)"} {
			if !strings.Contains(out, want) {
				t.Errorf("version: no %q in\n%s", want, out)
			}
		}
	})
}

func TestCLISecrets(t *testing.T) {
	d := testkit.StartDaemon(t, "", testkit.Options{Auth: true})
	c := newCLI(t, d)
	c.login()
	valueFile := c.writeFile("value.bin", "line one\nline two\n")
	if out := c.ok("s3cret\n", "secret", "create", "api-key"); out != "Created secret api-key\n" {
		t.Errorf("secret create: %q", out)
	}
	c.ok("", "secret", "create", "literal", "--from-literal", "lit value")
	c.ok("", "secret", "create", "from-file", "--from-file", valueFile)
	c.fail("secret api-key already exists: change it with `faasd secret update api-key`", "secret", "create", "api-key", "--from-literal", "x")
	out := c.ok("", "secret", "list")
	if strings.Join(strings.Fields(out), " ") != "NAME api-key from-file literal" {
		t.Errorf("secret list: %q", out)
	}
	c.writeFile("faasd.toml", `
[functions.show-key]
fprocess = "cat /var/openfaas/secrets/api-key"
secrets = ["api-key"]
[functions.show-file]
fprocess = "cat /var/openfaas/secrets/from-file"
secrets = ["from-file"]
`)
	c.ok("", "up")
	c.invokeUntil("show-key", "", "s3cret")
	if got := c.ok("", "invoke", "show-key"); got != "s3cret" {
		t.Errorf("the secret from stdin, without its line break: %q", got)
	}
	if got := c.ok("", "invoke", "show-file"); got != "line one\nline two\n" {
		t.Errorf("the secret from a file, byte for byte: %q", got)
	}
	c.ok("new value", "secret", "update", "api-key")
	if got := c.ok("", "invoke", "show-key"); got != "new value" {
		t.Errorf("after secret update: %q", got)
	}
	c.fail("no such secret: nope", "secret", "update", "nope", "--from-literal", "x")
	c.ok("", "remove", "show-key")
	if out := c.ok("", "secret", "remove", "literal"); out != "Removed secret literal\n" {
		t.Errorf("secret remove: %q", out)
	}
	if out := c.ok("", "secret", "list"); strings.Contains(out, "literal") {
		t.Errorf("removed secret still listed: %q", out)
	}
	c.fail("no such secret: literal", "secret", "remove", "literal")
	c.fail("unknown action \"frobnicate\"", "secret", "frobnicate")
}

// Login stores faas-cli's file; without it, a local daemon's password is found through the
// stack file that describes it.
func TestCLILoginAndCredentials(t *testing.T) {
	d := testkit.StartDaemon(t, "[functions.cat]\nfprocess = \"cat\"\n", testkit.Options{Auth: true})
	c := newCLI(t, d)
	c.fail("the gateway at "+d.URL+" wants credentials (401): run `faasd login --gateway "+d.URL+"`", "list")
	// The daemon's own stack file leads to its generated password.
	if out := c.ok("", "list", "-f", d.Config); !strings.Contains(out, "cat") {
		t.Errorf("list -f %s: %q", d.Config, out)
	}
	c.fail("refused the credentials from the command line (401)", "login", "--password", "wrong")
	out := c.ok("", "login", "-f", d.Config)
	if !strings.Contains(out, "Using the password faasd generated in "+filepath.Join(d.Dir, "state", "credentials")) {
		t.Errorf("login from the state dir: %q", out)
	}
	path := filepath.Join(c.cfgDir, "config.yml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	token := base64.StdEncoding.EncodeToString([]byte("admin:" + d.Password()))
	if want := "auths:\n  - gateway: " + d.URL + "\n    auth: basic\n    token: " + token + "\n"; string(b) != want {
		t.Errorf("config.yml:\n%s\nwant faas-cli's:\n%s", b, want)
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
		t.Errorf("config.yml mode %v, want 0600", info.Mode().Perm())
	}
	// Stored credentials serve every later command, found by the gateway's URL, also when
	// it comes from OPENFAAS_URL and is spelled with a trailing slash.
	c.gateway = ""
	c.env = append(c.env, "OPENFAAS_URL="+strings.ToUpper(d.URL)+"/")
	if out := c.ok("", "list"); !strings.Contains(out, "cat") {
		t.Errorf("list with stored credentials: %q", out)
	}
	// Wrong stored credentials are named as the culprit.
	os.WriteFile(path, []byte("auths:\n- gateway: "+d.URL+"\n  auth: basic\n  token: "+base64.StdEncoding.EncodeToString([]byte("admin:nope"))+"\n"), 0o600)
	c.fail("refused the credentials from "+path+" (401)", "list")
	c.ok(d.Password()+"\n", "login", "--username", "admin", "--password-stdin")
	c.ok("", "list")
}

// Errors are one line and a non-zero exit, and every command explains itself.
func TestCLIErrors(t *testing.T) {
	d := testkit.StartDaemon(t, "", testkit.Options{Auth: true})
	c := newCLI(t, d)
	c.login()
	dead := "http://" + testkit.FreeAddr(t)
	c.fail("cannot reach the gateway at "+dead, "list", "--gateway", dead)
	c.fail("cannot reach the gateway at "+dead, "invoke", "x", "--gateway", dead)
	for _, args := range [][]string{
		{"describe", "nope"}, {"invoke", "nope"}, {"scale", "nope", "--replicas", "1"}, {"remove", "nope"}, {"logs", "nope"},
	} {
		c.fail("no such function: nope", args...)
	}
	c.writeFile("faasd.toml", "[functions.broken]\nfprocess = \"cat\"\nbuild = [\"sh\", \"-c\", \"echo compiling; exit 3\"]\n")
	r := c.fail("build broken: `sh -c echo compiling; exit 3` exited with status 3", "up")
	if !strings.Contains(r.stdout, "compiling\n==> broken: build failed after ") {
		t.Errorf("up: the build's output and progress lines:\n%s", r.stdout)
	}
	if st, _ := d.API("GET", "/system/function/broken", ""); st != 404 {
		t.Errorf("a function whose build failed was deployed: %d", st)
	}
	c.writeFile("faasd.toml", "[functions.x]\nlables = {}\nfprocess = \"cat\"\n")
	c.fail(filepath.Join(c.dir, "faasd.toml")+":2: functions.x.lables: unknown key (did you mean labels?)", "up")
	c.fail(filepath.Join(c.dir, "faasd.toml")+":2:", "build")
	c.fail("no template for --lang \"cobol\"", "new", "x", "--lang", "cobol")
	c.fail("invalid function name \"Bad_Name\"", "new", "Bad_Name", "--lang", "bash")
	if r := c.run("", "scale", "x"); r.code != 2 || !strings.Contains(r.stderr, "scale needs --replicas N") {
		t.Errorf("scale without --replicas: exit %d, %q", r.code, r.stderr)
	}
	// A build that does not make the program the function runs: nothing is deployed.
	c.writeFile("faasd.toml", "[functions.unbuilt]\ncommand = [\"./bin/server\"]\nbuild = [\"true\"]\n")
	r = c.fail("nothing deployed: function unbuilt cannot run: program ./bin/server: "+filepath.Join(c.dir, "bin", "server")+" does not exist (relative to the workdir "+c.dir+")", "up")
	if !strings.Contains(r.stdout, "==> unbuilt: built in ") {
		t.Errorf("up: the program was checked before the build:\n%s", r.stdout)
	}
	if st, _ := d.API("GET", "/system/function/unbuilt", ""); st != 404 {
		t.Errorf("a function that cannot run was deployed: %d", st)
	}
	// Help asked for goes to stdout, so that it can be paged.
	for _, name := range []string{"serve", "new", "up", "build", "deploy", "list", "describe", "invoke", "scale", "logs", "remove", "secret", "login", "version"} {
		r := c.run("", name, "--help")
		if r.code != 0 || !strings.Contains(r.stdout, "Example:\n") || !strings.Contains(r.stdout, "faasd "+name+" ") || !strings.Contains(r.stdout, "Flags:") || r.stderr != "" {
			t.Errorf("faasd %s --help: exit %d\nstdout: %s\nstderr: %s", name, r.code, r.stdout, r.stderr)
		}
	}
	if r := c.run("", "help"); r.code != 0 || !strings.Contains(r.stdout, "  invoke    call a function") || r.stderr != "" {
		t.Errorf("faasd help: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if r := c.run(""); r.code != 2 || !strings.Contains(r.stderr, "Commands:") || r.stdout != "" {
		t.Errorf("faasd without a command: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
}

// When the daemon serves the very stack file `up` deploys, the functions are the file's:
// up builds, then has the daemon roll them over, and never deploys a second copy through
// the API.
func TestCLIUpOnTheDaemonsOwnStack(t *testing.T) {
	d := testkit.StartDaemon(t, "[functions.hash]\nfprocess = \"sha512sum\"\n", testkit.Options{Auth: true})
	c := newCLI(t, d)
	c.dir = d.Dir
	c.ok("", "new", "py-fn", "--lang", "python3", "-f", d.Config)
	out := c.ok("", "up", "-f", d.Config)
	// Neither has a build step: neither was rebuilt.
	for _, want := range []string{"==> py-fn: rolling over to its current files (served from the daemon's configuration file)", "==> hash: rolling over to its current files"} {
		if !strings.Contains(out, want) || strings.Contains(out, "rebuilt") {
			t.Errorf("first up: no %q in\n%s", want, out)
		}
	}
	c.invokeUntil("py-fn", "a", "Hello from py-fn! You said: a")
	out = c.ok("", "up", "-f", d.Config)
	if !strings.Contains(out, "==> py-fn: unchanged (served from the daemon's configuration file)") || !strings.Contains(out, "==> hash: unchanged") {
		t.Errorf("second up:\n%s", out)
	}
	c.editFile("py-fn/handler.py", "Hello from", "Howdy from")
	if out := c.ok("", "up", "-f", d.Config, "--filter", "py-fn"); !strings.Contains(out, "==> py-fn: rolling over to its current files") {
		t.Errorf("up after an edit:\n%s", out)
	}
	c.invokeUntil("py-fn", "b", "Howdy from py-fn! You said: b")
	// One catalog: the file's function, nothing deployed beside it, and a reload of the
	// file (here: by SIGHUP) neither rolls it over again nor forgets the build.
	st := getStatus(t, d, "py-fn")
	if st.raw["source"] != "file" {
		t.Errorf("py-fn: source %v, want file", st.raw["source"])
	}
	if entries, _ := os.ReadDir(filepath.Join(d.Dir, "state", "functions")); len(entries) != 0 {
		t.Errorf("functions deployed through the API beside the file's: %v", entries)
	}
	d.Signal(syscall.SIGHUP)
	testkit.WaitFor(t, 10*time.Second, "the daemon to reload", func() bool { return strings.Count(d.Log(), "config reloaded") >= 2 })
	if out := c.ok("", "up", "-f", d.Config, "--filter", "py-fn"); !strings.Contains(out, "==> py-fn: unchanged") {
		t.Errorf("up after a reload:\n%s", out)
	}
	if n := strings.Count(d.Log(), "spec changed: rolling replicas over"); n != 3 {
		t.Errorf("%d rollovers, want 3: hash and py-fn at the first up, py-fn after the edit, none for unchanged builds or the reload", n)
	}
}

// up --watch rebuilds and rolls over a function when its files change, and survives a
// build that fails.
func TestCLIUpWatch(t *testing.T) {
	d := testkit.StartDaemon(t, "", testkit.Options{Auth: true})
	c := newCLI(t, d)
	c.login()
	c.ok("", "new", "watched", "--lang", "python3")
	// A build step that fails while the handler says "broken".
	stackFile := filepath.Join(c.dir, "faasd.toml")
	b, _ := os.ReadFile(stackFile)
	os.WriteFile(stackFile, append(b, []byte("build = [\"sh\", \"-c\", \"if grep -q broken handler.py; then echo handler is broken; exit 1; fi\"]\n")...), 0o644)

	w := c.start("up", "--watch", "--gateway", d.URL)
	testkit.WaitFor(t, 60*time.Second, "up --watch to deploy and watch", func() bool {
		return strings.Contains(w.out.String(), "==> watching 1 functions")
	})
	c.invokeUntil("watched", "1", "Hello from watched! You said: 1")

	c.editFile("watched/handler.py", "Hello from", "Howdy from")
	c.invokeUntil("watched", "2", "Howdy from watched! You said: 2")
	if !strings.Contains(w.out.String(), "==> watched: updated, rolling over") {
		t.Errorf("up --watch after an edit:\n%s", w.out.String())
	}

	c.editFile("watched/handler.py", "Howdy from", "broken")
	testkit.WaitFor(t, 30*time.Second, "the failed build to be reported", func() bool {
		return strings.Contains(w.out.String(), "faasd: build watched: `sh -c if grep") && strings.Contains(w.out.String(), "exited with status 1")
	})
	if !w.running() {
		t.Fatalf("up --watch stopped at a failed build:\n%s", w.out.String())
	}
	c.editFile("watched/handler.py", "broken", "Salut from")
	c.invokeUntil("watched", "3", "Salut from watched! You said: 3")
	if err := w.interrupt(t); err != nil {
		t.Errorf("up --watch after Ctrl-C: %v\n%s", err, w.out.String())
	}
	if !strings.Contains(w.out.String(), "==> stopped watching") {
		t.Errorf("up --watch output:\n%s", w.out.String())
	}
}
