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
	"faasd/stack"
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
		for _, t := range langTemplates() {
			fmt.Fprintf(w, "%s\t%s\n", t.lang, t.description)
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
	tmpl, err := findTemplate(c.lang)
	if err != nil {
		return err
	}
	stackPath, err := filepath.Abs(c.stack)
	if err != nil {
		return err
	}
	dir := filepath.Join(filepath.Dir(stackPath), name)
	if _, err := os.Lstat(dir); err == nil {
		return fmt.Errorf("new %s: %s already exists", name, dir)
	}
	// Check the stack file before writing anything, so that a failure leaves no folder.
	if _, err := os.Stat(stackPath); err == nil {
		cfg, err := config.Load(stackPath)
		if err != nil {
			return err
		}
		if _, ok := cfg.Functions[name]; ok {
			return fmt.Errorf("new %s: %s already has functions.%s", name, stackPath, name)
		}
	}
	files, err := renderTemplate(tmpl.lang, name)
	if err != nil {
		return err
	}
	table, err := render(name, tmpl.table)
	if err != nil {
		return err
	}
	if err := writeTemplate(dir, files); err != nil {
		os.RemoveAll(dir)
		return fmt.Errorf("new %s: %w", name, err)
	}
	if err := stack.AddFunction(stackPath, name, "# faasd new "+name+" --lang "+tmpl.lang+"\n"+string(table)); err != nil {
		os.RemoveAll(dir)
		if errors.Is(err, stack.ErrExists) {
			return fmt.Errorf("new %s: %w", name, err)
		}
		return err
	}
	rel, err := filepath.Rel(mustGetwd(), stackPath)
	if err != nil {
		rel = stackPath
	}
	fmt.Fprintf(env.stdout, "Created %s/ from the %s template and added [functions.%s] to %s\n", dir, tmpl.lang, name, stackPath)
	fmt.Fprintf(env.stdout, "Next: faasd up -f %s --filter %s\n", rel, name)
	return nil
}

func mustGetwd() string {
	wd, err := os.Getwd()
	if err != nil {
		return "/"
	}
	return wd
}
