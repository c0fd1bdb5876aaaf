package main

import (
	"context"
	"flag"
	"fmt"
	"runtime"
)

// versionCmd prints the client's version and the gateway's.
type versionCmd struct {
	client     clientFlags
	clientOnly bool
}

func (c *versionCmd) flags(fs *flag.FlagSet) {
	c.client.register(fs)
	fs.BoolVar(&c.clientOnly, "client", false, "only the client's version; do not ask the gateway")
}

func (c *versionCmd) run(ctx context.Context, env *environment, _ []string) error {
	fmt.Fprintf(env.stdout, "faasd client\n  version: %s\n  commit:  %s\n  go:      %s %s/%s\n", version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if c.clientOnly {
		return nil
	}
	gw, err := c.client.connect(env)
	if err != nil {
		return err
	}
	info, err := gw.Info(ctx)
	if err != nil {
		return err
	}
	p := info.Provider
	fmt.Fprintf(env.stdout, "gateway %s\n  provider: %s (%s)\n  version:  %s\n  commit:   %s\n  arch:     %s\n", gw.URL, p.Provider, p.Orchestration, p.Version.Release, p.Version.SHA, info.Arch)
	return nil
}
