package supervisor

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// credentials is the account a program runs as.
type credentials struct {
	set    bool // false: keep the daemon's own
	uid    int
	gid    int
	groups []int
	name   string
	home   string
}

// lookupUser resolves the user of a function or service. As root, the default is the
// unprivileged "nobody"; running as root takes an explicit user = "root". A daemon that is
// not root can only run programs as itself.
func lookupUser(name string) (credentials, error) {
	if os.Geteuid() != 0 {
		if name != "" {
			if u, err := user.Current(); err == nil && u.Username != name {
				return credentials{}, fmt.Errorf("user %q: the daemon is not root, so functions run as %s", name, u.Username)
			}
		}
		return credentials{}, nil
	}
	if name == "" {
		name = "nobody"
	}
	u, err := user.Lookup(name)
	if err != nil {
		return credentials{}, fmt.Errorf("user %q: %w", name, err)
	}
	c := credentials{set: true, name: u.Username, home: u.HomeDir}
	if c.uid, err = strconv.Atoi(u.Uid); err != nil {
		return c, fmt.Errorf("user %q: uid %q: %w", name, u.Uid, err)
	}
	if c.gid, err = strconv.Atoi(u.Gid); err != nil {
		return c, fmt.Errorf("user %q: gid %q: %w", name, u.Gid, err)
	}
	gids, _ := u.GroupIds()
	for _, g := range gids {
		if n, err := strconv.Atoi(g); err == nil {
			c.groups = append(c.groups, n)
		}
	}
	return c, nil
}

// ownerOf returns the credentials that own a file.
func ownerOf(fi os.FileInfo) credentials {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || os.Geteuid() != 0 {
		return credentials{}
	}
	return credentials{set: true, uid: int(st.Uid), gid: int(st.Gid)}
}
