package main

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"

	"faasd/config"
	"faasd/export"
)

// exportCmd writes an OpenFaaS stack file and build contexts from the stack file.
type exportCmd struct {
	stack    string
	out      string
	filter   string
	registry string
	tag      string
	gateway  string
	force    bool
}

func (c *exportCmd) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.stack, "f", "faasd.toml", "stack file to export")
	fs.StringVar(&c.out, "o", "deploy", "output `directory`: stack.yml, one build context per function, services.md")
	fs.StringVar(&c.filter, "filter", "", "only the functions whose names match this `pattern` (\"hello\", \"api-*\")")
	fs.StringVar(&c.registry, "registry", "", "image name `prefix`, e.g. ghcr.io/acme: images are PREFIX/NAME:TAG (default NAME:TAG)")
	fs.StringVar(&c.tag, "tag", export.DefaultTag, "image `tag`")
	fs.StringVar(&c.gateway, "gateway", export.DefaultGateway, "the cluster's OpenFaaS gateway `URL`, written into stack.yml")
	fs.BoolVar(&c.force, "force", false, "write into a directory that holds other files, overwriting those of the export's names")
}

func (c *exportCmd) run(_ context.Context, env *environment, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("%w: unexpected arguments %q (name functions with --filter)", errUsage, args)
	}
	cfg, err := config.Load(c.stack)
	if err != nil {
		return err
	}
	out, err := filepath.Abs(c.out)
	if err != nil {
		return err
	}
	res, err := export.Export(cfg, export.Options{
		Filter: c.filter, Registry: c.registry, Tag: c.tag, Gateway: c.gateway, Skip: []string{out},
	})
	if err != nil {
		return err
	}
	if err := res.Write(out, c.force); err != nil {
		return err
	}
	for _, n := range res.Notes {
		fmt.Fprintf(env.stderr, "faasd export: %s\n", n)
	}
	if len(res.SecretCommands) > 0 {
		fmt.Fprintln(env.stderr, "faasd export: create the secrets in the cluster before deploying (the values stay here until you do):")
		for _, cmd := range res.SecretCommands {
			fmt.Fprintf(env.stderr, "  %s\n", cmd)
		}
	}
	fmt.Fprintf(env.stdout, "Wrote %s: stack.yml and a build context per function\n", c.out)
	fmt.Fprintf(env.stdout, "Next: cd %s && faas-cli up -f stack.yml\n", c.out)
	return nil
}
