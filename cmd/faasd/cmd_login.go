package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"faasd/cliconfig"
	"faasd/client"
)

// loginCmd checks a user and password against the gateway and stores them where faas-cli
// keeps its logins.
type loginCmd struct {
	client        clientFlags
	user          string
	password      string
	passwordStdin bool
}

func (c *loginCmd) flags(fs *flag.FlagSet) {
	c.client.register(fs)
	fs.StringVar(&c.user, "username", "admin", "user name")
	fs.StringVar(&c.user, "u", "admin", "user name (same as --username)")
	fs.StringVar(&c.password, "password", "", "password (visible to other users in ps: prefer --password-stdin)")
	fs.StringVar(&c.password, "p", "", "password (same as --password)")
	fs.BoolVar(&c.passwordStdin, "password-stdin", false, "read the password from standard input")
}

func (c *loginCmd) run(ctx context.Context, env *environment, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("%w: login takes no arguments, got %q", errUsage, args)
	}
	cfg, err := c.client.localStack()
	if err != nil {
		return err
	}
	gw, err := connectTo(env, c.client.gateway, cfg)
	if err != nil {
		return err
	}
	user, password := c.user, c.password
	switch {
	case c.passwordStdin && password != "":
		return fmt.Errorf("%w: --password and --password-stdin: use one", errUsage)
	case c.passwordStdin:
		b, err := io.ReadAll(env.stdin)
		if err != nil {
			return fmt.Errorf("read password: %w", err)
		}
		password = strings.TrimRight(string(b), "\r\n")
	case password == "":
		// A local daemon's generated password, from the state directory of the stack
		// file that describes it.
		u, p, from, ok := localBasicAuth(cfg, gw.URL)
		if !ok {
			return fmt.Errorf("%w: give the password with --password-stdin (no local daemon's state directory found for %s)", errUsage, gw.URL)
		}
		user, password = u, p
		fmt.Fprintf(env.stdout, "Using the password faasd generated in %s\n", from)
	}
	if password == "" {
		return errors.New("login: the password is empty")
	}
	gw.Auth, gw.AuthFrom = client.Auth{User: user, Password: password}, "the command line"
	check, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := gw.Functions(check); err != nil {
		return err
	}
	path, err := cliconfig.Path(env.getenv)
	if err != nil {
		return err
	}
	logins, err := cliconfig.Read(path)
	if err != nil {
		return err
	}
	logins.SetBasic(gw.URL, user, password)
	if err := logins.Write(); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "Credentials of %s for %s saved in %s\n", user, gw.URL, path)
	return nil
}
