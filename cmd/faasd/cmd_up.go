package main

import (
	"context"
	"flag"
	"fmt"

	"faasd/config"
	"faasd/deploy"
	"faasd/stack"
)

// upCmd is `faasd up` (build, then deploy), `faasd build` and `faasd deploy`.
type upCmd struct {
	build, deploy bool // the halves this command does
	client        clientFlags
	filter        string
	watch         bool
}

func (c *upCmd) flags(fs *flag.FlagSet) {
	if c.deploy {
		c.client.register(fs)
	} else {
		fs.StringVar(&c.client.stack, "f", "", "stack file (default faasd.toml)")
	}
	fs.StringVar(&c.filter, "filter", "", "only the functions whose names match this `pattern` (\"hello\", \"api-*\")")
	if c.build && c.deploy {
		fs.BoolVar(&c.watch, "watch", false, "keep watching the functions' folders and the stack file; rebuild and roll a function over when its files change")
	}
}

func (c *upCmd) run(ctx context.Context, env *environment, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("%w: unexpected arguments %q (name functions with --filter)", errUsage, args)
	}
	path, _ := c.client.stackFile()
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	fns, err := stack.Select(cfg, c.filter)
	if err != nil {
		return err
	}
	var d *deploy.Deployer
	if c.deploy {
		gw, err := connectTo(env, c.client.gateway, cfg)
		if err != nil {
			return err
		}
		d = deploy.New(gw, gw.URL, cfg, env.getenv("PATH"), env.stdout)
		// Before any build: an unreachable gateway or bad credentials are better told now
		// than after minutes of compiling.
		if err := d.Refresh(ctx); err != nil {
			return err
		}
	}
	if c.build {
		for _, f := range fns {
			if err := deploy.Build(ctx, env.stdout, f); err != nil {
				return err
			}
		}
	}
	// Every function's program, once built, before any deploy: all or nothing.
	if err := deploy.Programs(fns, env.getenv("PATH")); err != nil {
		if c.deploy {
			return fmt.Errorf("nothing deployed: %w", err)
		}
		return err
	}
	if !c.deploy {
		return nil
	}
	trees := map[string]string{}
	for _, f := range fns {
		if trees[f.Name], err = d.Deploy(ctx, f); err != nil {
			return err
		}
	}
	if !c.watch {
		return nil
	}
	ctx, stop := interruptible(ctx)
	defer stop()
	return d.Watch(ctx, c.filter, trees, env.logf)
}

// logf reports a problem on standard error, one line, and carries on: for the loops that
// outlive a failure (up --watch).
func (e *environment) logf(format string, a ...any) {
	fmt.Fprintf(e.stderr, format+"\n", a...)
}
