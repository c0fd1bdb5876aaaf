// Package stack is a faasd.toml as the client sees it: it runs the functions' build
// commands, hashes what a function's replicas would run so that deploying an unchanged
// function is a no-op, turns a function into the deployment the API takes, and adds new
// functions to the file. It never talks to a daemon; cmd/faasd does that.
package stack

import (
	"fmt"
	"maps"
	"path"
	"slices"

	"faasd/config"
)

// Select returns the functions of cfg whose names match filter (a shell pattern such as
// "hello" or "api-*"; empty matches all), by name.
func Select(cfg *config.Config, filter string) ([]*config.Function, error) {
	if filter != "" {
		if _, err := path.Match(filter, ""); err != nil {
			return nil, fmt.Errorf("--filter %q: %w", filter, err)
		}
	}
	var out []*config.Function
	for _, name := range slices.Sorted(maps.Keys(cfg.Functions)) {
		if ok, _ := path.Match(filter, name); filter == "" || ok {
			out = append(out, cfg.Functions[name])
		}
	}
	if len(out) == 0 {
		if filter != "" {
			return nil, fmt.Errorf("%s: no function matches --filter %q", cfg.Path, filter)
		}
		return nil, fmt.Errorf("%s: no functions: add one with `faasd new NAME --lang LANG`", cfg.Path)
	}
	return out, nil
}
