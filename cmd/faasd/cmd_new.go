package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"

	"faasd/config"
	"faasd/templates"
)

// newCmd creates a function from a template and adds it to the stack file.
type newCmd struct {
	lang  string
	stack string
	list  bool
}

func (c *newCmd) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.lang, "lang", "", "the template: go, python3, node, ruby or bash (see --list)")
	fs.StringVar(&c.stack, "f", "faasd.toml", "stack file to add the function to (created if missing); the function's folder goes beside it")
	fs.BoolVar(&c.list, "list", false, "list the templates")
}

func (c *newCmd) run(_ context.Context, env *environment, args []string) error {
	if c.list {
		w := tabwriter.NewWriter(env.stdout, 0, 8, 2, ' ', 0)
		fmt.Fprintln(w, "Language\tDescription")
		for _, t := range templates.List() {
			fmt.Fprintf(w, "%s\t%s\n", t.Lang, t.Description)
		}
		return w.Flush()
	}
	if len(args) != 1 {
		return fmt.Errorf("%w: new takes one function name, got %d arguments", errUsage, len(args))
	}
	name := args[0]
	if c.lang == "" {
		return fmt.Errorf("%w: new needs --lang (see faasd new --list)", errUsage)
	}
	if err := config.ValidName(name); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	tmpl, err := templates.Find(c.lang)
	if errors.Is(err, templates.ErrUnknown) {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if err != nil {
		return err
	}
	dir, err := templates.Create(c.stack, name, tmpl)
	if err != nil {
		return err
	}
	stackPath, _ := filepath.Abs(c.stack)
	rel := stackPath
	if wd, err := os.Getwd(); err == nil {
		if r, err := filepath.Rel(wd, stackPath); err == nil {
			rel = r
		}
	}
	fmt.Fprintf(env.stdout, "Created %s/ from the %s template and added [functions.%s] to %s\n", dir, tmpl.Lang, name, stackPath)
	fmt.Fprintf(env.stdout, "Next: faasd up -f %s --filter %s\n", rel, name)
	return nil
}
