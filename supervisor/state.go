package supervisor

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// openStateDir opens the state directory, under which the daemon makes the directories
// of replicas and services. As root it writes there on everyone's behalf, so the
// directory must be root's and writable by nobody else: whoever could write in it could
// swap run/ or services/ for a link to anywhere between two of the daemon's calls.
func openStateDir(path string) (*dir, error) {
	d, err := openDir(path)
	if err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	if os.Geteuid() != 0 {
		// A state dir that root made, before, is root's.
		if err := unix.Access(path, unix.W_OK|unix.X_OK); err != nil {
			d.close()
			return nil, fmt.Errorf("state dir %s: %w: the daemon runs as you, and the directory is another account's (made by faasd as root?): remove it, or give it to you, or choose another state_dir", path, err)
		}
		return d, nil
	}
	st, err := d.stat()
	if err != nil {
		d.close()
		return nil, err
	}
	if st.Uid != 0 || st.Mode&0o022 != 0 {
		d.close()
		return nil, fmt.Errorf("state dir %s belongs to uid %d with mode %#o: faasd runs as root and needs it root's, writable by root alone (chown -R root %s; chmod go-w %s), or another state_dir",
			path, st.Uid, st.Mode&0o7777, path, path)
	}
	return d, nil
}

// letPass lets every account pass through dirs, without listing them: the account of a
// service reaches its data dir by path, as replicas do their directories when there are
// no mount namespaces.
func letPass(dirs ...*dir) error {
	for _, d := range dirs {
		st, err := d.stat()
		if err != nil {
			return err
		}
		if mode := os.FileMode(st.Mode & 0o777); mode&0o001 == 0 {
			if err := d.f.Chmod(mode | 0o011); err != nil {
				return fmt.Errorf("let every account pass through %s: %w", d.path, err)
			}
		}
	}
	return nil
}
