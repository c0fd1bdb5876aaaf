package statedir

import (
	"errors"
	"os"
	"testing"
)

func TestLayout(t *testing.T) {
	l := New("/srv/faasd")
	for got, want := range map[string]string{
		l.Run():               "/srv/faasd/run",
		l.Functions():         "/srv/faasd/functions",
		l.Secrets():           "/srv/faasd/secrets/openfaas-fn",
		l.BasicAuthUser():     "/srv/faasd/credentials/basic-auth-user",
		l.BasicAuthPassword(): "/srv/faasd/credentials/basic-auth-password",
		l.Service("db"):       "/srv/faasd/services/db",
	} {
		if got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	}
}

func TestBasicAuthCreatedOnceThenRead(t *testing.T) {
	l := New(t.TempDir())
	if _, _, err := l.ReadBasicAuth(); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("before the first start: %v, want not-exist", err)
	}
	user, pass, err := l.EnsureBasicAuth()
	if err != nil || user != "admin" || len(pass) < 32 {
		t.Fatalf("EnsureBasicAuth = %q %q %v", user, pass, err)
	}
	for path, want := range map[string]os.FileMode{l.BasicAuth(): 0o700, l.BasicAuthUser(): 0o600, l.BasicAuthPassword(): 0o600} {
		if info, err := os.Stat(path); err != nil || info.Mode().Perm() != want {
			t.Errorf("%s: %v %v, want mode %v", path, info.Mode().Perm(), err, want)
		}
	}
	u2, p2, err := l.EnsureBasicAuth()
	if err != nil || u2 != user || p2 != pass {
		t.Errorf("second start: %q %q %v, want the first pair", u2, p2, err)
	}
	// An operator's own pair, with the newline an editor adds, is read as it is meant.
	os.WriteFile(l.BasicAuthUser(), []byte("ops\n"), 0o600)
	os.WriteFile(l.BasicAuthPassword(), []byte("s3cret\n"), 0o600)
	if u, p, err := l.ReadBasicAuth(); err != nil || u != "ops" || p != "s3cret" {
		t.Errorf("ReadBasicAuth = %q %q %v", u, p, err)
	}
	// A password lost after a crash: a new pair, not half of the old one.
	os.Remove(l.BasicAuthPassword())
	if u, p, err := l.EnsureBasicAuth(); err != nil || u != "admin" || p == "s3cret" || p == "" {
		t.Errorf("after the password was lost: %q %q %v", u, p, err)
	}
	// An empty file is a mistake to report, never a login with an empty password.
	os.WriteFile(l.BasicAuthPassword(), []byte("\n"), 0o600)
	if _, _, err := l.EnsureBasicAuth(); err == nil || errors.Is(err, os.ErrNotExist) {
		t.Errorf("empty password file: %v, want an error", err)
	}
}
