package supervisor

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"strconv"

	"faasd/accounts"
)

// credentials is the account a program runs as.
type credentials struct {
	set    bool // false: the daemon's own
	uid    int
	gid    int
	groups []int
	name   string // for USER and LOGNAME
}

// ids returns the ids that the program's files belong to, or -1 for the daemon's own, as
// chown takes them.
func (c credentials) ids() (uid, gid int) {
	if !c.set {
		return -1, -1
	}
	return c.uid, c.gid
}

// DynamicIDs hands out the ids of the accounts that functions and services without a
// `user` get, one each: *accounts.Pool.
type DynamicIDs interface {
	ID(kind accounts.Kind, name string) (int, error)
}

// accountSource decides which account each function and service runs as.
type accountSource struct {
	root bool
	ids  DynamicIDs
}

func newAccountSource(ids DynamicIDs) accountSource {
	return accountSource{root: os.Geteuid() == 0, ids: ids}
}

// resolve returns the account of a function or service (kind) called name that asks for
// user. As root: that account when named, or else one of the name's own, with no other
// group, whose ids nobody else has. A daemon that is not root can only run programs as
// itself, whatever they ask for (see warnNotRoot).
func (a accountSource) resolve(kind accounts.Kind, name, userName string) (credentials, error) {
	switch {
	case !a.root:
		return credentials{}, nil
	case userName != "":
		return lookupUser(userName)
	case a.ids == nil:
		return credentials{}, errors.New("no range of ids to give an account of its own: name a user")
	}
	id, err := a.ids.ID(kind, name)
	if err != nil {
		return credentials{}, err
	}
	prefix := "fn-"
	if kind == accounts.Service {
		prefix = "svc-"
	}
	return credentials{set: true, uid: id, gid: id, name: prefix + name}, nil
}

// warnNotRoot says once, at start, what a daemon that is not root does with accounts.
func warnNotRoot(log *slog.Logger) {
	if os.Geteuid() == 0 {
		return
	}
	name := strconv.Itoa(os.Geteuid())
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	log.Warn("the daemon is not root: every function and service runs as " + name + ", its own account; the user of faasd.toml and an account of their own for each come with running it as root")
}

// lookupUser resolves an account by name.
func lookupUser(name string) (credentials, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return credentials{}, fmt.Errorf("user %q: %w", name, err)
	}
	c := credentials{set: true, name: u.Username}
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
