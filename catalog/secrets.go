package catalog

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"faasd/config"
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

// Names lists the secrets.
func (s *Secrets) Names() ([]string, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	names := []string{}
	for _, e := range entries {
		if e.Type().IsRegular() && config.ValidSecretName(e.Name()) == nil {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names, nil
}

// Exists reports whether a secret is stored.
func (s *Secrets) Exists(name string) bool {
	if config.ValidSecretName(name) != nil {
		return false
	}
	_, err := os.Stat(filepath.Join(s.dir, name))
	return err == nil
}

// Put creates (update false) or replaces (update true) a secret.
func (s *Secrets) Put(name string, value []byte, update bool) error {
	if err := config.ValidSecretName(name); err != nil {
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
	if err := config.ValidSecretName(name); err != nil {
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

// Read returns a secret's value.
func (s *Secrets) Read(name string) ([]byte, error) {
	if err := config.ValidSecretName(name); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	b, err := os.ReadFile(filepath.Join(s.dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("secret %s: %w", name, ErrNotFound)
	}
	return b, err
}

// Provision makes the secrets a configuration file declares that the store does not have
// yet, and returns their names. A stored secret is left as it is: a value set through
// the API or the CLI wins over the file's recipe.
func (s *Secrets) Provision(specs map[string]*config.Secret) ([]string, error) {
	var made []string
	for _, name := range slices.Sorted(maps.Keys(specs)) {
		spec := specs[name]
		var value []byte
		switch {
		case spec.File != "":
			b, err := os.ReadFile(spec.File)
			if err != nil {
				return made, fmt.Errorf("secret %s: %w", name, err)
			}
			value = b
		case spec.Generate:
			raw := make([]byte, 24)
			rand.Read(raw)
			value = []byte(base64.RawURLEncoding.EncodeToString(raw))
		}
		err := s.Put(name, value, false)
		if errors.Is(err, ErrExists) {
			continue
		}
		if err != nil {
			return made, err
		}
		made = append(made, name)
	}
	return made, nil
}
