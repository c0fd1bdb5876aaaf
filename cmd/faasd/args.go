package main

import (
	"flag"
)

// parseFlags parses flags wherever they stand among the positional arguments, so that
// `faasd scale hello --replicas 2` works as well as `faasd scale --replicas 2 hello`.
// "--" ends the flags; everything after it is positional.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if i := len(args) - len(rest); i > 0 && args[i-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}
