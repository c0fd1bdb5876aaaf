package proxy

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// Credentials are the basic-auth user and password of /system and /ui.
type Credentials struct {
	User     string
	Password string
}

// LoadCredentials reads the credentials from dir, creating them on first start: user
// "admin" and a random password, in files of mode 0600 as OpenFaaS keeps them
// (basic-auth-user, basic-auth-password).
func LoadCredentials(dir string) (Credentials, error) {
	userFile, passFile := filepath.Join(dir, "basic-auth-user"), filepath.Join(dir, "basic-auth-password")
	user, uerr := os.ReadFile(userFile)
	pass, perr := os.ReadFile(passFile)
	if uerr == nil && perr == nil {
		c := Credentials{User: strings.TrimSpace(string(user)), Password: strings.TrimSpace(string(pass))}
		if c.User == "" || c.Password == "" {
			return c, fmt.Errorf("credentials in %s: empty user or password", dir)
		}
		return c, nil
	}
	if !errors.Is(uerr, os.ErrNotExist) && uerr != nil {
		return Credentials{}, fmt.Errorf("credentials: %w", uerr)
	}
	if !errors.Is(perr, os.ErrNotExist) && perr != nil {
		return Credentials{}, fmt.Errorf("credentials: %w", perr)
	}
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return Credentials{}, err
	}
	c := Credentials{User: "admin", Password: base64.RawURLEncoding.EncodeToString(b[:])}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return c, fmt.Errorf("credentials: %w", err)
	}
	if err := os.WriteFile(userFile, []byte(c.User), 0o600); err != nil {
		return c, fmt.Errorf("credentials: %w", err)
	}
	if err := os.WriteFile(passFile, []byte(c.Password), 0o600); err != nil {
		return c, fmt.Errorf("credentials: %w", err)
	}
	return c, nil
}

// requireAuth guards a handler with basic auth when credentials are set. Both user and
// password are compared in constant time, so timing tells nothing about either.
func (p *Proxy) requireAuth(h http.Handler) http.Handler {
	if p.creds == nil {
		return h
	}
	want := p.creds
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		userOK := subtle.ConstantTimeCompare([]byte(user), []byte(want.User))
		passOK := subtle.ConstantTimeCompare([]byte(pass), []byte(want.Password))
		if !ok || userOK&passOK != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="Restricted"`)
			http.Error(w, "invalid credentials", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}
