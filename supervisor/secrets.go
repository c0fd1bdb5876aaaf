package supervisor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"faasd/config"
)

// SecretsMount is where a function sees its secrets.
const SecretsMount = "/var/openfaas/secrets"

// copySecrets gives a replica its own directory with copies of the secrets its function
// lists, owned by the replica's user and mounted read-only at SecretsMount. A directory,
// not single files, is mounted so that a secret replaced later (by rename) shows through.
func (s *Supervisor) copySecrets(spec *config.Function, replicaDir string, c credentials) (string, error) {
	if len(spec.Secrets) == 0 {
		return "", nil
	}
	dir := filepath.Join(replicaDir, "secrets")
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", fmt.Errorf("secrets dir: %w", err)
	}
	for _, name := range spec.Secrets {
		value, err := os.ReadFile(filepath.Join(s.secrets, name))
		if err != nil {
			return "", fmt.Errorf("secret %s: %w", name, err)
		}
		if err := writeOwned(dir, name, value, c); err != nil {
			return "", fmt.Errorf("secret %s: %w", name, err)
		}
	}
	if c.set {
		if err := os.Chown(dir, c.uid, c.gid); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// canMountSecrets reports whether replicas can see secrets at SecretsMount.
func (s *Supervisor) canMountSecrets() bool {
	if s.iso == isolateTmpdir {
		return false
	}
	fi, err := os.Stat(SecretsMount)
	return err == nil && fi.IsDir()
}

// RefreshSecret replaces a secret in every running replica that has it, so that an
// update shows without a restart.
func (s *Supervisor) RefreshSecret(name string) error {
	value, err := os.ReadFile(filepath.Join(s.secrets, name))
	if err != nil {
		return fmt.Errorf("refresh secret %s: %w", name, err)
	}
	copies, _ := filepath.Glob(filepath.Join(s.runDir, "*", "*", "secrets", name))
	var errs []error
	for _, path := range copies {
		fi, err := os.Stat(path)
		if err != nil {
			continue // the replica went away meanwhile
		}
		c := ownerOf(fi)
		if err := writeOwned(filepath.Dir(path), name, value, c); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// writeOwned writes a file readable only by the replica's user, replacing any old one
// atomically.
func writeOwned(dir, name string, value []byte, c credentials) error {
	tmp := filepath.Join(dir, "."+name+".new")
	if err := os.WriteFile(tmp, value, 0o400); err != nil {
		return err
	}
	if c.set {
		if err := os.Chown(tmp, c.uid, c.gid); err != nil {
			os.Remove(tmp)
			return err
		}
	}
	return os.Rename(tmp, filepath.Join(dir, name))
}
