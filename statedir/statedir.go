// Package statedir is the layout of the daemon's state directory ([gateway] state_dir),
// spelled once for every package that reads or writes under it:
//
//	STATE/
//	  run/NAME/ID/             a replica's directory (its private /tmp, its secrets);
//	                           emptied when the daemon starts
//	  functions/NAME.json      a function deployed through the API
//	  secrets/openfaas-fn/NAME a secret's value
//	  credentials/             the API's basic-auth user and password, one file each
//	  services/NAME/           a service's data directory
//	  users.json               the uid of each function's and service's own account
//
// It also owns the basic-auth files, which the daemon creates and the CLI reads to log in
// to a local daemon. It creates nothing else: each directory belongs to the package that
// fills it.
package statedir

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"faasd/api"
	"faasd/internal/atomicfile"
)

// Layout is a state directory.
type Layout struct {
	Root string
}

// New returns the layout of the state directory root.
func New(root string) Layout { return Layout{Root: root} }

// Run holds the directories of the running replicas, one per function and replica.
func (l Layout) Run() string { return filepath.Join(l.Root, "run") }

// Functions holds the functions deployed through the API, one NAME.json each.
func (l Layout) Functions() string { return filepath.Join(l.Root, "functions") }

// Secrets holds the secret values of the one namespace there is, a file each.
func (l Layout) Secrets() string { return filepath.Join(l.Root, "secrets", api.Namespace) }

// BasicAuth holds the API's basic-auth user and password, named as OpenFaaS names them.
func (l Layout) BasicAuth() string { return filepath.Join(l.Root, "credentials") }

// BasicAuthUser is the file of the API's user name.
func (l Layout) BasicAuthUser() string { return filepath.Join(l.BasicAuth(), "basic-auth-user") }

// BasicAuthPassword is the file of the API's password.
func (l Layout) BasicAuthPassword() string {
	return filepath.Join(l.BasicAuth(), "basic-auth-password")
}

// Queue holds the embedded queue's stored asynchronous calls.
func (l Layout) Queue() string { return filepath.Join(l.Root, "queue") }

// Users records the uid of each function's and service's own account (package accounts).
func (l Layout) Users() string { return filepath.Join(l.Root, "users.json") }

// Service is the data directory of a service.
func (l Layout) Service(name string) string { return filepath.Join(l.Root, "services", name) }

// ReadBasicAuth reads the API's user and password. Either file missing is an error that
// matches os.ErrNotExist: the daemon has not created them (yet).
func (l Layout) ReadBasicAuth() (user, password string, err error) {
	u, err := os.ReadFile(l.BasicAuthUser())
	if err != nil {
		return "", "", fmt.Errorf("basic auth: %w", err)
	}
	p, err := os.ReadFile(l.BasicAuthPassword())
	if err != nil {
		return "", "", fmt.Errorf("basic auth: %w", err)
	}
	user, password = strings.TrimSpace(string(u)), strings.TrimSpace(string(p))
	if user == "" || password == "" {
		return "", "", fmt.Errorf("basic auth in %s: empty user or password", l.BasicAuth())
	}
	return user, password, nil
}

// EnsureBasicAuth reads the API's user and password, creating them on first start: user
// "admin" and a random password, in files of mode 0600 in a directory of mode 0700.
func (l Layout) EnsureBasicAuth() (user, password string, err error) {
	user, password, err = l.ReadBasicAuth()
	if !errors.Is(err, os.ErrNotExist) {
		return user, password, err
	}
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", err
	}
	user, password = "admin", base64.RawURLEncoding.EncodeToString(b[:])
	if err := os.MkdirAll(l.BasicAuth(), 0o700); err != nil {
		return "", "", fmt.Errorf("basic auth: %w", err)
	}
	// The user first: a crash between the two leaves no password, and the next start
	// makes a new pair instead of reading half of one.
	if err := atomicfile.Write(l.BasicAuthUser(), []byte(user), 0o600); err != nil {
		return "", "", fmt.Errorf("basic auth: %w", err)
	}
	if err := atomicfile.Write(l.BasicAuthPassword(), []byte(password), 0o600); err != nil {
		return "", "", fmt.Errorf("basic auth: %w", err)
	}
	return user, password, nil
}
