package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"faasd/cliconfig"
	"faasd/client"
	"faasd/config"
	"faasd/statedir"
)

// defaultGateway is where a client looks for faasd when nothing says otherwise.
const defaultGateway = "http://127.0.0.1:8080"

// clientFlags are the flags every client subcommand shares.
type clientFlags struct {
	gateway string
	stack   string // -f; empty means faasd.toml, used only if it exists
}

func (c *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.gateway, "gateway", "", "gateway URL (default $OPENFAAS_URL, else the stack file's [gateway] listen, else "+defaultGateway+")")
	fs.StringVar(&c.gateway, "g", "", "gateway URL (same as --gateway)")
	fs.StringVar(&c.stack, "f", "", "stack file (default faasd.toml, when it exists): its [gateway] gives the local daemon's address and credentials")
}

// stackFile is the path of the stack file and whether it was named explicitly.
func (c *clientFlags) stackFile() (string, bool) {
	if c.stack != "" {
		return c.stack, true
	}
	return "faasd.toml", false
}

// localStack reads the stack file for the gateway's address and credentials: a file named
// with -f must load; the default faasd.toml counts only when it exists and parses.
func (c *clientFlags) localStack() (*config.Config, error) {
	path, explicit := c.stackFile()
	cfg, err := config.Load(path)
	if err != nil {
		if explicit {
			return nil, err
		}
		return nil, nil
	}
	return cfg, nil
}

// connect resolves the gateway and its credentials for a command.
func (c *clientFlags) connect(env *environment) (*client.Gateway, error) {
	cfg, err := c.localStack()
	if err != nil {
		return nil, err
	}
	return connectTo(env, c.gateway, cfg)
}

// connectTo resolves the gateway URL and its credentials: a stored login (faasd login,
// faas-cli login) first, then, for the daemon a local stack file describes, the password
// it generated into its state directory.
func connectTo(env *environment, flagURL string, cfg *config.Config) (*client.Gateway, error) {
	gw := client.New(resolveGateway(flagURL, env.getenv("OPENFAAS_URL"), cfg), client.Auth{})
	path, err := cliconfig.Path(env.getenv)
	if err != nil {
		return nil, err
	}
	logins, err := cliconfig.Read(path)
	if err != nil {
		return nil, err
	}
	if l, ok := logins.Login(gw.URL); ok {
		gw.AuthFrom = path
		if l.Auth != "basic" {
			gw.Auth.Token = l.Token
			return gw, nil
		}
		gw.Auth.User, gw.Auth.Password, err = l.Basic()
		return gw, err
	}
	if user, password, from, ok := localBasicAuth(cfg, gw.URL); ok {
		gw.Auth, gw.AuthFrom = client.Auth{User: user, Password: password}, from
	}
	return gw, nil
}

// resolveGateway picks the gateway URL: the flag, else $OPENFAAS_URL, else the address the
// local stack file's daemon serves its API on, else the default; normalised as faas-cli does, so
// that stored logins match.
func resolveGateway(flagURL, envURL string, cfg *config.Config) string {
	switch {
	case flagURL != "":
		return cliconfig.NormalizeURL(flagURL)
	case envURL != "":
		return cliconfig.NormalizeURL(envURL)
	case cfg != nil:
		return cliconfig.NormalizeURL(client.ListenURL(cfg.Gateway.APIAddress()))
	}
	return defaultGateway
}

// localBasicAuth reads the user and password a local daemon generated into its state
// directory, when the stack file describes the daemon at gatewayURL.
func localBasicAuth(cfg *config.Config, gatewayURL string) (user, password, from string, ok bool) {
	if cfg == nil || !cfg.Gateway.Auth || !client.SameListener(client.ListenURL(cfg.Gateway.APIAddress()), gatewayURL) {
		return "", "", "", false
	}
	state := statedir.New(cfg.Gateway.StateDir)
	user, password, err := state.ReadBasicAuth()
	if err != nil {
		return "", "", "", false
	}
	return user, password, state.BasicAuth(), true
}

// explain turns what the client reports into the one line a user needs, with the advice
// that fits.
func explain(err error) error {
	if ae, ok := errors.AsType[*client.AuthError](err); ok {
		return fmt.Errorf("%w: run `faasd login --gateway %s`", ae, ae.URL)
	}
	if ue, ok := errors.AsType[*client.UnreachableError](err); ok {
		return fmt.Errorf("cannot reach the gateway at %s (is `faasd serve` running? set --gateway or OPENFAAS_URL): %w", ue.URL, ue.Err)
	}
	return err
}

// notFound turns a 404 into "no such KIND: NAME" and keeps other errors.
func notFound(err error, kind, name string) error {
	if client.IsStatus(err, http.StatusNotFound) {
		return fmt.Errorf("no such %s: %s", kind, name)
	}
	return err
}

// interruptible ends ctx on SIGINT or SIGTERM, for the commands that run until stopped
// (logs --follow, up --watch, a long invoke), so that they return and exit 0.
func interruptible(ctx context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}
