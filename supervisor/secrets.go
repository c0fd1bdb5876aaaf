package supervisor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
)

// SecretsMount is where a function sees its secrets.
const SecretsMount = "/var/openfaas/secrets"

// A replica gets copies of the secrets its function lists, in a directory of its own,
// STATE/run/NAME/ID/secrets, mounted read-only at SecretsMount. A directory, not single
// files, is mounted so that a secret replaced later (by rename) shows through.
//
// The directory and its files are the daemon's, readable by the replica's group only
// (0750 and 0440): the replica can read its copies but not add, replace or link anything
// there, so the daemon's writes in it go where they are meant to. Which replica has which
// secret is recorded here, when the copies are made: an update reaches exactly the
// replicas whose function listed the secret, whatever files appear in their directories.

// secretCopies records the replicas' copies of secrets.
type secretCopies struct {
	store string // the values, one file each

	// mu also spans a replica's first copies, so that an update either reaches a new
	// replica or comes before its copies are read from the store.
	mu   sync.Mutex
	dirs map[*secretsDir]struct{}
}

// secretsDir is one replica's directory of copies.
type secretsDir struct {
	d     *dir
	gid   int      // the replica's group, which may read them; -1 for a daemon that is not root
	names []string // the secrets its function lists, for as long as it lives
}

func newSecretCopies(store string) *secretCopies {
	return &secretCopies{store: store, dirs: map[*secretsDir]struct{}{}}
}

// copy makes the secrets directory of a replica in its directory home, with copies of
// names, and records it. It returns nil when there is nothing to copy.
func (sc *secretCopies) copy(home *dir, names []string, c credentials) (*secretsDir, error) {
	if len(names) == 0 {
		return nil, nil
	}
	_, gid := c.ids()
	d, err := home.mkdir("secrets", 0o750, -1, gid)
	if err != nil {
		return nil, fmt.Errorf("secrets dir: %w", err)
	}
	sd := &secretsDir{d: d, gid: gid, names: slices.Clone(names)}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for _, name := range names {
		value, err := os.ReadFile(filepath.Join(sc.store, name))
		if err == nil {
			err = sd.write(name, value)
		}
		if err != nil {
			d.close()
			return nil, fmt.Errorf("secret %s: %w", name, err)
		}
	}
	sc.dirs[sd] = struct{}{}
	return sd, nil
}

// drop forgets a replica's copies, before its directory goes.
func (sc *secretCopies) drop(sd *secretsDir) {
	if sd == nil {
		return
	}
	sc.mu.Lock()
	delete(sc.dirs, sd)
	sc.mu.Unlock()
	sd.d.close()
}

// refresh replaces the copies of a secret in every replica that has one.
func (sc *secretCopies) refresh(name string) error {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	value, err := os.ReadFile(filepath.Join(sc.store, name))
	if err != nil {
		return fmt.Errorf("refresh secret %s: %w", name, err)
	}
	var errs []error
	for sd := range sc.dirs {
		if slices.Contains(sd.names, name) {
			errs = append(errs, sd.write(name, value))
		}
	}
	return errors.Join(errs...)
}

func (sd *secretsDir) write(name string, value []byte) error {
	return sd.d.writeFile(name, value, 0o440, -1, sd.gid)
}

// canMountSecrets reports whether replicas can see secrets at SecretsMount.
func (s *Supervisor) canMountSecrets() bool {
	if s.iso == isolateTmpdir {
		return false
	}
	fi, err := os.Stat(SecretsMount)
	return err == nil && fi.IsDir()
}

// RefreshSecret replaces a secret in every running replica whose function lists it, so
// that an update shows without a restart.
func (s *Supervisor) RefreshSecret(name string) error { return s.secrets.refresh(name) }
