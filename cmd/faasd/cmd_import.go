package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"faasd/export"
	"faasd/stack"
)

// importCmd adds the functions of an OpenFaaS stack file to the stack file.
type importCmd struct {
	stack  string
	filter string
}

func (c *importCmd) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.stack, "f", "faasd.toml", "stack file to add the functions to (created if missing)")
	fs.StringVar(&c.filter, "filter", "", "only the functions whose names match this `pattern`")
}

func (c *importCmd) run(_ context.Context, env *environment, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("%w: import takes one OpenFaaS stack file, got %d arguments", errUsage, len(args))
	}
	path, err := filepath.Abs(c.stack)
	if err != nil {
		return err
	}
	res, err := export.Import(args[0], env.getenv, filepath.Dir(path), c.filter)
	if err != nil {
		return err
	}
	for _, n := range res.Notes {
		fmt.Fprintf(env.stderr, "faasd import: %s\n", n)
	}
	if len(res.Tables) > 0 {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("import: %w", err)
		}
	}
	added := 0
	for _, t := range res.Tables {
		err := stack.AddFunction(path, t.Name, "# faasd import "+args[0]+"\n"+t.Text)
		if errors.Is(err, stack.ErrExists) {
			fmt.Fprintf(env.stderr, "faasd import: %s: %s already has it, left as it is\n", t.Name, path)
			continue
		}
		if err != nil {
			return err
		}
		added++
		fmt.Fprintf(env.stdout, "Added [functions.%s] to %s\n", t.Name, path)
	}
	if added == 0 && len(res.Tables) == 0 {
		return fmt.Errorf("import %s: no function faasd can run (the lines above say why)", args[0])
	}
	if added > 0 {
		fmt.Fprintf(env.stdout, "Next: faasd serve -f %s, or faasd up -f %s against a running daemon\n", c.stack, c.stack)
	}
	return nil
}
