package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"faasd/config"
	"faasd/internal/testkit"
)

// as asks a workload function to do something on the machine as its account: /fs or
// /kill with query q (and a body for writes). It returns whether that was allowed, and
// the answer.
func as(t *testing.T, d *testkit.Daemon, fn, route string, q url.Values, body string) (bool, string) {
	t.Helper()
	code, got := invoke(t, d, "POST", fn, "/"+route+"?"+q.Encode(), body)
	if code != 200 && code != 403 {
		t.Fatalf("%s /%s?%s: %d %s", fn, route, q.Encode(), code, got)
	}
	return code == 200, got
}

func fsOp(op, path, target string) url.Values {
	return url.Values{"op": {op}, "path": {path}, "target": {target}}
}

// A function plants links and files in its secrets directory, as it could when that
// directory was its own, and then the API updates the secrets: the daemon, root, writes
// nothing outside the replica's directory, and the function receives only the secrets
// it listed.
func TestSecretUpdatesCannotBeLedOutOfTheReplica(t *testing.T) {
	m := strings.ToLower(marker(t))
	created := "/etc/" + m + "-created"
	victim := "/etc/" + m + "-victim"
	if err := os.WriteFile(victim, []byte("root's own"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(created); os.Remove(victim) })
	// A service of its own account makes the state dir passable, as MariaDB does in the
	// example stack: the replica's directory is then reachable by path.
	_, port, _ := net.SplitHostPort(testkit.FreeAddr(t))
	d := testkit.StartDaemon(t, workload("mallory", `secrets = ["s1"]`)+fmt.Sprintf(`
[services.db]
command = ["{{BIN}}/workload"]
env = { PORT = "%s", NO_LOCK = "1" }
ready_tcp = "127.0.0.1:%s"
`, port, port), testkit.Options{Auth: true})
	for _, s := range []string{"s1", "s2"} {
		if code, body := d.API("POST", "/system/secrets", fmt.Sprintf(`{"name":%q,"value":"%s v1"}`, s, s)); code != 201 {
			t.Fatalf("create %s: %d %s", s, code, body)
		}
	}
	// Its replicas start once the secret exists; two of them, each with a directory.
	if code, body := d.API("POST", "/system/scale-function/mallory", `{"replicas":2}`); code != 202 {
		t.Fatalf("scale: %d %s", code, body)
	}
	// The replica started with the daemon failed for want of s1, so the function fails
	// fast (503) until a new one is ready: that is "not yet" here.
	testkit.WaitFor(t, 20*time.Second, "a replica of mallory with its secrets", func() bool {
		code, got := invoke(t, d, "POST", "mallory", "/fs?"+fsOp("read", "/var/openfaas/secrets/s1", "").Encode(), "")
		return code == 200 && got == "s1 v1"
	})
	runDir := filepath.Join(d.State().Root, "run", "mallory")
	replicas, err := os.ReadDir(runDir)
	if err != nil || len(replicas) == 0 {
		t.Fatalf("replica directories: %v %v", replicas, err)
	}
	for _, r := range replicas {
		dir := filepath.Join(runDir, r.Name(), "secrets")
		for _, attempt := range []struct {
			what string
			q    url.Values
			body string
		}{
			{"a link where the daemon wrote its temporary file", fsOp("symlink", dir+"/.s1.new", created), ""},
			{"a secret it never listed", fsOp("write", dir+"/s2", ""), "planted"},
			{"a link in place of its secret", fsOp("symlink", dir+"/s1.link", victim), ""},
			{"the link swapped in", fsOp("rename", dir+"/s1", dir+"/s1.link"), ""},
			{"its secrets directory swapped for a link", fsOp("symlink", filepath.Dir(dir)+"/elsewhere", "/etc"), ""},
		} {
			// Several replicas: the answer may come from any of them, so every attempt
			// is made on each directory through whichever replica answers.
			if ok, got := as(t, d, "mallory", "fs", attempt.q, attempt.body); ok {
				t.Errorf("the function could plant %s: %s", attempt.what, got)
			}
		}
	}
	for _, s := range []string{"s1", "s2"} {
		if code, body := d.API("PUT", "/system/secrets", fmt.Sprintf(`{"name":%q,"value":"%s v2"}`, s, s)); code != 200 {
			t.Fatalf("update %s: %d %s", s, code, body)
		}
	}
	if _, err := os.Lstat(created); err == nil {
		t.Errorf("the daemon created %s", created)
	}
	if b, _ := os.ReadFile(victim); string(b) != "root's own" {
		t.Errorf("the daemon wrote %s: %q", victim, b)
	}
	if fi, err := os.Stat(victim); err != nil || fi.Sys().(*syscall.Stat_t).Uid != 0 || fi.Mode().Perm() != 0o644 {
		t.Errorf("%s after the update: %v %v", victim, fi.Sys(), err)
	}
	for range 10 { // every replica has the new value, and never s2
		if ok, got := as(t, d, "mallory", "fs", fsOp("read", "/var/openfaas/secrets/s1", ""), ""); !ok || got != "s1 v2" {
			t.Errorf("s1 in a replica after the update: %v %q", ok, got)
		}
		if ok, got := as(t, d, "mallory", "fs", fsOp("read", "/var/openfaas/secrets/s2", ""), ""); ok {
			t.Errorf("a secret the function never listed reached it: %q", got)
		}
	}
}

// Each function has an account of its own: another function can neither read its
// environment or its secrets through /proc nor signal it, and the accounts stay the same
// across a restart of the daemon.
func TestFunctionsCannotReachEachOther(t *testing.T) {
	d := testkit.StartDaemon(t, workload("alice", `secrets = ["alice-key"]
env = { VERSION = "alice" }`)+workload("bob", `secrets = ["bob-key"]
env = { VERSION = "bob", BOB_PRIVATE = "bob's own" }`), testkit.Options{Auth: true})
	for _, s := range []string{"alice-key", "bob-key"} {
		if code, body := d.API("POST", "/system/secrets", fmt.Sprintf(`{"name":%q,"value":"%s value"}`, s, s)); code != 201 {
			t.Fatalf("create %s: %d %s", s, code, body)
		}
	}
	// The replicas start once their secrets exist.
	infos := func() map[string]testkit.Info {
		out := map[string]testkit.Info{}
		for _, fn := range []string{"alice", "bob"} {
			testkit.WaitFor(t, 20*time.Second, fn+" serving", func() bool {
				info, err := d.GetInfo(fn)
				out[fn] = info
				return err == nil
			})
		}
		return out
	}
	before := infos()
	alice, bob := before["alice"], before["bob"]
	for _, info := range before {
		if !config.DefaultUserRange.Contains(uint32(info.UID)) {
			t.Errorf("%s runs as uid %d, want one from %v", info.Version, info.UID, config.DefaultUserRange)
		}
	}
	if alice.UID == bob.UID {
		t.Fatalf("alice and bob share uid %d", alice.UID)
	}
	proc := fmt.Sprintf("/proc/%d/", bob.PID)
	for _, path := range []string{proc + "environ", proc + "root/var/openfaas/secrets/bob-key", proc + "root/tmp/.lock"} {
		if ok, got := as(t, d, "alice", "fs", fsOp("read", path, ""), ""); ok {
			t.Errorf("alice read bob's %s: %q", path, got)
		}
	}
	for _, sig := range []syscall.Signal{0, syscall.SIGKILL} {
		if ok, got := as(t, d, "alice", "kill", url.Values{"pid": {fmt.Sprint(bob.PID)}, "sig": {fmt.Sprint(int(sig))}}, ""); ok {
			t.Errorf("alice signalled bob with %v: %s", sig, got)
		}
	}
	// Bob can read his own, which shows the reads above failed for want of rights.
	if ok, got := as(t, d, "bob", "fs", fsOp("read", fmt.Sprintf("/proc/%d/environ", bob.PID), ""), ""); !ok || !strings.Contains(got, "BOB_PRIVATE=bob's own") {
		t.Errorf("bob reading his own environment: %v %q", ok, got)
	}

	d.Signal(syscall.SIGTERM)
	if err := d.Wait(30 * time.Second); err != nil {
		t.Fatalf("daemon exit: %v", err)
	}
	d.Start()
	for fn, info := range infos() {
		if info.UID != before[fn].UID {
			t.Errorf("%s: uid %d after a restart, %d before", fn, info.UID, before[fn].UID)
		}
	}
	var rec struct{ Functions map[string]int }
	b, err := os.ReadFile(d.State().Users())
	if err != nil || json.Unmarshal(b, &rec) != nil || rec.Functions["alice"] != alice.UID || rec.Functions["bob"] != bob.UID {
		t.Errorf("users.json: %s %v", b, err)
	}
}
