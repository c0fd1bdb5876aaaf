package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"

	"faasd/client"
)

// secretCmd manages secrets: create, update, list, remove.
type secretCmd struct {
	client      clientFlags
	fromLiteral string
	fromFile    string
}

func (c *secretCmd) flags(fs *flag.FlagSet) {
	c.client.register(fs)
	fs.StringVar(&c.fromLiteral, "from-literal", "", "the value, given on the command line")
	fs.StringVar(&c.fromFile, "from-file", "", "read the value from this `file`, byte for byte")
}

func (c *secretCmd) run(ctx context.Context, env *environment, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: secret needs an action: create, update, list or remove", errUsage)
	}
	action, args := args[0], args[1:]
	gw, err := c.client.connect(env)
	if err != nil {
		return err
	}
	switch action {
	case "list", "ls":
		if len(args) > 0 {
			return fmt.Errorf("%w: secret list takes no arguments", errUsage)
		}
		secrets, err := gw.Secrets(ctx)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(env.stdout, 0, 8, 2, ' ', 0)
		fmt.Fprintln(w, "NAME")
		for _, s := range secrets {
			fmt.Fprintln(w, s.Name)
		}
		return w.Flush()
	case "create", "update":
		name, err := oneSecret(action, args)
		if err != nil {
			return err
		}
		value, err := c.value(env)
		if err != nil {
			return err
		}
		if action == "create" {
			err = gw.CreateSecret(ctx, name, value)
			if client.IsStatus(err, http.StatusConflict) {
				return fmt.Errorf("secret %s already exists: change it with `faasd secret update %s`", name, name)
			}
		} else {
			err = gw.UpdateSecret(ctx, name, value)
		}
		if err != nil {
			return notFound(err, "secret", name)
		}
		fmt.Fprintf(env.stdout, "%s secret %s\n", map[string]string{"create": "Created", "update": "Updated"}[action], name)
		return nil
	case "remove", "rm":
		name, err := oneSecret(action, args)
		if err != nil {
			return err
		}
		if err := gw.DeleteSecret(ctx, name); err != nil {
			return notFound(err, "secret", name)
		}
		fmt.Fprintf(env.stdout, "Removed secret %s\n", name)
		return nil
	}
	return fmt.Errorf("%w: secret: unknown action %q (create, update, list or remove)", errUsage, action)
}

func oneSecret(action string, args []string) (string, error) {
	if len(args) != 1 || args[0] == "" {
		return "", fmt.Errorf("%w: secret %s takes one secret name", errUsage, action)
	}
	return args[0], nil
}

// value is the secret's value: --from-literal, --from-file (byte for byte), or standard
// input without its final line break (what `echo value |` adds).
func (c *secretCmd) value(env *environment) ([]byte, error) {
	switch {
	case c.fromLiteral != "" && c.fromFile != "":
		return nil, fmt.Errorf("%w: --from-literal and --from-file: use one", errUsage)
	case c.fromLiteral != "":
		return []byte(c.fromLiteral), nil
	case c.fromFile != "":
		b, err := os.ReadFile(c.fromFile)
		if err != nil {
			return nil, fmt.Errorf("secret value: %w", err)
		}
		return b, nil
	}
	if isTerminal(env.stdin) {
		fmt.Fprintln(env.stderr, "Reading the value from standard input: end it with Ctrl-D")
	}
	b, err := io.ReadAll(env.stdin)
	if err != nil {
		return nil, fmt.Errorf("secret value: %w", err)
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if s == "" {
		return nil, fmt.Errorf("%w: the secret value is empty (give it on standard input, --from-literal or --from-file)", errUsage)
	}
	return []byte(s), nil
}
