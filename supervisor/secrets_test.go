package supervisor

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"

	"faasd/config"
)

// storeSecret writes a secret's value into the store of a pretend supervisor.
func storeSecret(t *testing.T, s *Supervisor, name, value string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(s.secrets.store, name), []byte(value), 0o600); err != nil {
		t.Fatal(err)
	}
}

// owner returns the owner, group and mode of a file, not following a link.
func owner(t *testing.T, path string) (uid, gid uint32, mode os.FileMode) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return st.Uid, st.Gid, fi.Mode()
}

// withSecrets starts a pretend supervisor whose store holds values, and one replica of a
// function fn that lists the secrets listed.
func withSecrets(t *testing.T, values map[string]string, listed ...string) (*Supervisor, *pretend) {
	t.Helper()
	s, m := pretendSupervisor(t)
	for name, value := range values {
		storeSecret(t, s, name, value)
	}
	f := pretendFunction(t, "fn", nil)
	f.Secrets = listed
	s.Apply(one(f))
	synctest.Wait()
	if st := status(t, s, "fn"); st.Ready != 1 {
		t.Fatalf("status %+v", st)
	}
	return s, m
}

// A replica can read its copies, through its group, and change nothing in their
// directory; nor can any other account look into the replica's directory at all.
func TestReplicaDirectoriesBelongToTheDaemonAndTmpToTheReplica(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, m := withSecrets(t, map[string]string{"s1": "one"}, "s1")
		l := m.launches[0]
		id := uint32(l.creds.uid)
		if !l.creds.set || !config.DefaultUserRange.Contains(id) || l.creds.gid != l.creds.uid || len(l.creds.groups) != 0 {
			t.Fatalf("credentials %+v: want an account of its own, without other groups", l.creds)
		}
		home := filepath.Join(s.runDir, "fn", "1")
		for _, c := range []struct {
			path     string
			uid, gid uint32
			mode     os.FileMode
		}{
			{filepath.Join(s.runDir, "fn"), 0, 0, os.ModeDir | 0o700},
			{home, 0, 0, os.ModeDir | 0o700},
			{filepath.Join(home, "tmp"), id, id, os.ModeDir | os.ModeSticky | 0o777},
			{filepath.Join(home, "secrets"), 0, id, os.ModeDir | 0o750},
			{filepath.Join(home, "secrets", "s1"), 0, id, 0o440},
		} {
			if uid, gid, mode := owner(t, c.path); uid != c.uid || gid != c.gid || mode != c.mode {
				t.Errorf("%s: %d:%d %v, want %d:%d %v", c.path, uid, gid, mode, c.uid, c.gid, c.mode)
			}
		}
		if l.secrets != filepath.Join(home, "secrets") {
			t.Errorf("secrets mounted from %q", l.secrets)
		}
	})
}

// What a function plants in its secrets directory must not lead the daemon, which writes
// there as root, anywhere: not a link where the daemon once wrote its temporary file, not a
// secret the function never listed, not a link in place of its own secret. The daemon
// owns the directory now, so a function cannot plant anything; the test plants as root,
// as a function could before, and shows the daemon's writes would not care.
func TestSecretRefreshFollowsNoLinkAndWritesOnlyListedSecrets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, _ := withSecrets(t, map[string]string{"s1": "one", "s2": "two"}, "s1")
		dir := filepath.Join(s.runDir, "fn", "1", "secrets")
		outside := t.TempDir()
		victim := filepath.Join(outside, "victim")
		if err := os.WriteFile(victim, []byte("untouched"), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, plant := range []func() error{
			func() error { return os.Symlink(filepath.Join(outside, "created"), filepath.Join(dir, ".s1.new")) },
			func() error { return os.WriteFile(filepath.Join(dir, "s2"), []byte("planted"), 0o644) },
			func() error { return os.Symlink(filepath.Join(outside, "created-s2"), filepath.Join(dir, ".s2.new")) },
			func() error {
				os.Remove(filepath.Join(dir, "s1"))
				return os.Symlink(victim, filepath.Join(dir, "s1"))
			},
		} {
			if err := plant(); err != nil {
				t.Fatal(err)
			}
		}
		storeSecret(t, s, "s1", "one, updated")
		storeSecret(t, s, "s2", "two, updated")
		for _, name := range []string{"s1", "s2"} {
			if err := s.RefreshSecret(name); err != nil {
				t.Errorf("refresh %s: %v", name, err)
			}
		}
		entries, _ := os.ReadDir(outside)
		if len(entries) != 1 {
			t.Errorf("files outside the replica's directory: %v, want only the victim", entries)
		}
		if b, _ := os.ReadFile(victim); string(b) != "untouched" {
			t.Errorf("victim now %q", b)
		}
		if uid, gid, mode := owner(t, victim); uid != 0 || gid != 0 || mode != 0o644 {
			t.Errorf("victim now %d:%d %v", uid, gid, mode)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "s2")); string(b) != "planted" {
			t.Errorf("a secret the function never listed reached it: s2 = %q", b)
		}
		if _, _, mode := owner(t, filepath.Join(dir, "s1")); !mode.IsRegular() {
			t.Errorf("s1 is %v after the refresh, want the daemon's file", mode)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "s1")); string(b) != "one, updated" {
			t.Errorf("s1 = %q after the refresh", b)
		}
		// The daemon's temporary files are gone; the planted link stays, unused.
		entries, _ = os.ReadDir(dir)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if strings.Join(names, " ") != ".s1.new .s2.new s1 s2" {
			t.Errorf("secrets dir holds %v", names)
		}
	})
}

// Replicas that go take their record along: a refresh reaches the live ones only, and a
// new replica gets the current value.
func TestSecretRefreshReachesLiveReplicasOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, _ := withSecrets(t, map[string]string{"s1": "v1"}, "s1")
		if err := s.Scale("fn", 0); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if n := len(s.secrets.dirs); n != 0 {
			t.Fatalf("%d secret directories recorded after the replica went", n)
		}
		storeSecret(t, s, "s1", "v2")
		if err := s.RefreshSecret("s1"); err != nil {
			t.Fatal(err)
		}
		if err := s.Scale("fn", 1); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if b, err := os.ReadFile(filepath.Join(s.runDir, "fn", "2", "secrets", "s1")); string(b) != "v2" {
			t.Fatalf("the new replica's s1: %q %v", b, err)
		}
	})
}
