package catalog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"

	"faasd/internal/atomicfile"
)

// Secrets keeps secret values as files of mode 0600 in one directory. Values are written
// atomically; replicas get copies of the secrets their function lists.
type Secrets struct {
	dir string
	mu  sync.Mutex
}

func openSecrets(dir string) (*Secrets, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("secrets dir: %w", err)
	}
	// Writes a crash interrupted: the values they were replacing are intact.
	if err := atomicfile.RemoveTemps(dir); err != nil {
		return nil, fmt.Errorf("secrets dir: %w", err)
	}
	return &Secrets{dir: dir}, nil
}

// Dir is where the values live.
func (s *Secrets) Dir() string { return s.dir }

var secretName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`)

// ValidSecretName accepts DNS-1123 subdomains, as faas-cli does; that rules out `/`,
// `..` and anything else that could reach outside the store.
func ValidSecretName(name string) error {
	if len(name) > 253 || !secretName.MatchString(name) || strings.Contains(name, "..") {
		return fmt.Errorf("invalid secret name %q: want lower-case letters, digits, '-' and '.', starting and ending alphanumeric", name)
	}
	return nil
}

// Names lists the secrets.
func (s *Secrets) Names() ([]string, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	names := []string{}
	for _, e := range entries {
		if e.Type().IsRegular() && ValidSecretName(e.Name()) == nil {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names, nil
}

// Exists reports whether a secret is stored.
func (s *Secrets) Exists(name string) bool {
	if ValidSecretName(name) != nil {
		return false
	}
	_, err := os.Stat(filepath.Join(s.dir, name))
	return err == nil
}

// Put creates (update false) or replaces (update true) a secret.
func (s *Secrets) Put(name string, value []byte, update bool) error {
	if err := ValidSecretName(name); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	exists := s.Exists(name)
	switch {
	case update && !exists:
		return fmt.Errorf("secret %s: %w", name, ErrNotFound)
	case !update && exists:
		return fmt.Errorf("secret %s: %w", name, ErrExists)
	}
	return atomicfile.Write(filepath.Join(s.dir, name), value, 0o600)
}

// Delete removes a secret.
func (s *Secrets) Delete(name string) error {
	if err := ValidSecretName(name); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	err := os.Remove(filepath.Join(s.dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("secret %s: %w", name, ErrNotFound)
	}
	return err
}
