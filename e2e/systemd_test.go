package e2e

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"faasd/internal/testkit"
)

// The daemon under a service manager: what systemd would hear on its notification
// socket, and what the journal would get on the daemon's stderr.
func TestSystemdNotificationsAndJournalLines(t *testing.T) {
	dir := testkit.Dir(t)
	addr := testkit.FreeAddr(t)
	config := filepath.Join(dir, "faasd.toml")
	text := fmt.Sprintf("[gateway]\nlisten = %q\nstate_dir = \"state\"\nauth = false\n\n%s\n[functions.env]\nfprocess = \"env\"\n",
		addr, workload("hello", ""))
	if err := os.WriteFile(config, []byte(strings.ReplaceAll(text, "{{BIN}}", testkit.Bin(t))), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msgs := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	// The journal's stream is a socket in real life; any file will do, since the daemon
	// recognises it by device and inode.
	stderr, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	var st syscall.Stat_t
	syscall.Fstat(int(stderr.Fd()), &st)

	cmd := exec.Command(filepath.Join(testkit.Bin(t), "faasd"), "serve", "-f", config)
	cmd.Dir = dir
	cmd.Stderr = stderr
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=400000",
		fmt.Sprintf("JOURNAL_STREAM=%d:%d", st.Dev, st.Ino))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			log, _ := os.ReadFile(stderr.Name())
			t.Logf("daemon log:\n%s", log)
		}
	}()

	var seen []string
	// expect returns the next message with the given first line, skipping watchdog pings
	// and status updates.
	expect := func(first string) string {
		t.Helper()
		deadline := time.After(60 * time.Second)
		for {
			select {
			case m, ok := <-msgs:
				if !ok {
					t.Fatalf("socket closed waiting for %s; got %q", first, seen)
				}
				seen = append(seen, m)
				if strings.SplitN(m, "\n", 2)[0] == first {
					return m
				}
			case err := <-exited:
				t.Fatalf("daemon exited (%v) waiting for %s; got %q", err, first, seen)
			case <-deadline:
				t.Fatalf("no %s; got %q", first, seen)
			}
		}
	}

	ready := expect("READY=1")
	// READY=1 comes once the gateway serves and the functions have started.
	if !strings.Contains(ready, "STATUS=serving 2 functions, 2 replicas ready") {
		t.Errorf("ready: %q", ready)
	}
	if code, body := testkit.Get(t, "http://"+addr+"/function/hello/info"); code != http.StatusOK {
		t.Errorf("invoke right after READY=1: %d %s", code, body)
	}
	for _, m := range seen {
		if m == "WATCHDOG=1" {
			t.Errorf("watchdog ping before READY=1: %q", seen)
		}
	}
	expect("WATCHDOG=1")
	expect("WATCHDOG=1")

	// Replicas never see the daemon's systemd environment.
	resp, err := http.Post("http://"+addr+"/function/env", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	var env bytes.Buffer
	env.ReadFrom(resp.Body)
	resp.Body.Close()
	if strings.Contains(env.String(), "NOTIFY_SOCKET") || !strings.Contains(env.String(), "PATH=") {
		t.Errorf("a replica's environment:\n%s", env.String())
	}

	cmd.Process.Signal(syscall.SIGHUP)
	reloading := expect("RELOADING=1")
	if !regexp.MustCompile(`\nMONOTONIC_USEC=\d+\n`).MatchString(reloading) {
		t.Errorf("reloading: %q", reloading)
	}
	expect("READY=1")

	cmd.Process.Signal(syscall.SIGTERM)
	expect("STOPPING=1")
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("daemon exit: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("daemon did not stop")
	}

	log, _ := os.ReadFile(stderr.Name())
	lines := strings.Split(strings.TrimSpace(string(log)), "\n")
	line := regexp.MustCompile(`^<[3467]>level=(DEBUG|INFO|WARN|ERROR) msg=`)
	for _, l := range lines {
		if !line.MatchString(l) || strings.Contains(l, "time=") {
			t.Errorf("not a journal line: %q", l)
		}
	}
	if !strings.Contains(string(log), `<6>level=INFO msg="faasd serving"`) || len(lines) < 3 {
		t.Errorf("journal lines:\n%s", log)
	}
}

// `faasd install` for a package (--root): the files it writes, a unit systemd accepts,
// a reinstall that keeps the configuration, and an uninstall that keeps the data.
func TestInstallAndUninstall(t *testing.T) {
	faasd := filepath.Join(testkit.Bin(t), "faasd")
	root := testkit.Dir(t)
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(faasd, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("faasd %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	unit := run("install", "--print", "--root", root)
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Fatalf("--print changed %s: %v", root, entries)
	}
	for _, want := range []string{"Type=notify", "ExecStart=/usr/local/bin/faasd serve -f /etc/faasd/faasd.toml", "Delegate=yes", "KillMode=mixed"} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q", want)
		}
	}

	out := run("install", "--root", root)
	at := func(p string) string { return filepath.Join(root, p) }
	if got, _ := os.ReadFile(at("/etc/systemd/system/faasd.service")); string(got) != unit {
		t.Errorf("the installed unit differs from --print:\n%s", got)
	}
	bin, _ := os.ReadFile(faasd)
	installed, err := os.ReadFile(at("/usr/local/bin/faasd"))
	if err != nil || !bytes.Equal(bin, installed) {
		t.Errorf("binary not installed: %v", err)
	}
	if fi, err := os.Stat(at("/usr/local/bin/faasd")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("binary mode: %v %v", fi.Mode(), err)
	}
	if fi, err := os.Stat(at("/var/lib/faasd")); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Errorf("state dir: %v", err)
	}
	if !strings.Contains(out, "systemd left alone (--root)") {
		t.Errorf("install said:\n%s", out)
	}

	verify(t, root)

	// A reinstall (an upgrade) keeps the configuration the user edited.
	cfg := at("/etc/faasd/faasd.toml")
	edited := []byte("[gateway]\nlisten = \"0.0.0.0:8080\"\n")
	if err := os.WriteFile(cfg, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	if out := run("install", "--root", root); !strings.Contains(out, "kept "+cfg) {
		t.Errorf("reinstall said:\n%s", out)
	}
	if got, _ := os.ReadFile(cfg); !bytes.Equal(got, edited) {
		t.Errorf("reinstall changed the configuration: %s", got)
	}

	os.WriteFile(at("/var/lib/faasd/marker"), []byte("deployed"), 0o600)
	out = run("uninstall", "--root", root)
	for _, gone := range []string{"/etc/systemd/system/faasd.service", "/usr/local/bin/faasd"} {
		if _, err := os.Stat(at(gone)); err == nil {
			t.Errorf("%s survives uninstall", gone)
		}
	}
	for _, kept := range []string{"/etc/faasd/faasd.toml", "/var/lib/faasd/marker"} {
		if _, err := os.Stat(at(kept)); err != nil {
			t.Errorf("uninstall removed %s", kept)
		}
	}
	if !strings.Contains(out, "--purge removes it") {
		t.Errorf("uninstall said:\n%s", out)
	}
	run("uninstall", "--purge", "--root", root)
	for _, gone := range []string{"/etc/faasd", "/var/lib/faasd"} {
		if _, err := os.Stat(at(gone)); err == nil {
			t.Errorf("%s survives --purge", gone)
		}
	}
}

// verify runs systemd-analyze on the installed unit, with the installed binary where the
// unit expects it (a private mount namespace, so the host's /usr/local/bin is untouched).
func verify(t *testing.T, root string) {
	t.Helper()
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatal("systemd-analyze is missing: scripts/install-deps.sh systemd installs it")
	}
	unit := filepath.Join(root, "etc/systemd/system/faasd.service")
	script := fmt.Sprintf("mount --bind %s /usr/local/bin && %s verify %s", filepath.Join(root, "usr/local/bin"), analyze, unit)
	out, err := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	// The exposure score needs no running systemd offline; it is reported, not judged.
	out, err = exec.Command(analyze, "security", "--offline=true", unit).CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze security: %v\n%s", err, out)
	}
	if m := regexp.MustCompile(`Overall exposure level for faasd.service: .*`).Find(out); m != nil {
		t.Logf("systemd-analyze security: %s", m)
	}
}
