package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"faasd/config"
	"faasd/stack"
)

// settle is how long a function's files must be quiet before `up --watch` rebuilds it:
// editors and builds write several times per save.
const settle = 250 * time.Millisecond

// stackChanged is the key under which changes of the stack file itself are debounced.
const stackChanged = "\x00stack"

// watchStack keeps rebuilding and redeploying the functions whose files change, until
// interrupted. trees holds the hash of each function's files as last deployed; a change
// that leaves the hash alone (the build's own output landing) does nothing. A failed build
// or deploy is reported and the watch goes on.
func (c *upCmd) watchStack(ctx context.Context, env *environment, cfg *config.Config, d *deployer, trees map[string]string) error {
	ctx, stop := interruptible(ctx)
	defer stop()
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	skip := []string{cfg.Gateway.StateDir}
	watched := map[string]bool{}
	addTree := func(root string) {
		filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
			if err != nil || !e.IsDir() {
				return nil
			}
			if p != root && stack.Skipped(p, skip) {
				return filepath.SkipDir
			}
			if !watched[p] {
				if err := w.Add(p); err != nil {
					env.logf("faasd: watch %s: %v", p, err)
				} else {
					watched[p] = true
				}
			}
			return nil
		})
	}
	if err := w.Add(filepath.Dir(cfg.Path)); err != nil {
		return err
	}
	fns := map[string]*config.Function{}
	selected, _ := stack.Select(cfg, c.filter)
	for _, f := range selected {
		fns[f.Name] = f
		addTree(f.Workdir)
	}

	fire := make(chan string)
	timers := map[string]*time.Timer{}
	schedule := func(name string) {
		if t, ok := timers[name]; ok {
			t.Reset(settle)
			return
		}
		timers[name] = time.AfterFunc(settle, func() {
			select {
			case fire <- name:
			case <-ctx.Done():
			}
		})
	}
	defer func() {
		for _, t := range timers {
			t.Stop()
		}
	}()

	redeploy := func(f *config.Function) {
		tree, err := stack.TreeHash(f, skip...)
		if err != nil {
			env.logf("faasd: %v", err)
			return
		}
		if tree == trees[f.Name] {
			return
		}
		fmt.Fprintf(env.stdout, "==> %s: changed\n", f.Name)
		if err := buildFunction(ctx, env, f); err != nil {
			env.logf("faasd: %v", err)
			// Its own output must not trigger another attempt; the next edit will.
			trees[f.Name], _ = stack.TreeHash(f, skip...)
			return
		}
		if err := d.refreshOne(ctx, f.Name); err != nil {
			env.logf("faasd: %v", err)
			return
		}
		tree, err = d.deploy(ctx, f)
		if err != nil {
			env.logf("faasd: %v", err)
			trees[f.Name], _ = stack.TreeHash(f, skip...)
			return
		}
		trees[f.Name] = tree
	}
	reload := func() {
		next, err := config.Load(cfg.Path)
		if err != nil {
			env.logf("faasd: %v (keeping the stack as it was)", err)
			return
		}
		sel, err := stack.Select(next, c.filter)
		if err != nil {
			env.logf("faasd: %v", err)
			return
		}
		cfg, d.cfg = next, next
		for _, f := range sel {
			if old, ok := fns[f.Name]; ok && old.Equal(f) {
				continue
			}
			fmt.Fprintf(env.stdout, "==> %s: changed in %s\n", f.Name, cfg.Path)
			fns[f.Name] = f
			addTree(f.Workdir)
			delete(trees, f.Name) // a new spec deploys even when the files are the same
			redeploy(f)
		}
	}

	fmt.Fprintf(env.stdout, "==> watching %d functions and %s for changes (Ctrl-C stops)\n", len(fns), cfg.Path)
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(env.stdout, "==> stopped watching")
			return nil
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			env.logf("faasd: watch: %v", err)
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if ev.Op == fsnotify.Chmod {
				continue
			}
			p := filepath.Clean(ev.Name)
			if p == cfg.Path {
				schedule(stackChanged)
				continue
			}
			if ev.Has(fsnotify.Create) {
				if info, err := os.Lstat(p); err == nil && info.IsDir() {
					for _, f := range fns {
						if within(p, f.Workdir) {
							addTree(p)
						}
					}
				}
			}
			for name, f := range fns {
				if within(p, f.Workdir) {
					schedule(name)
				}
			}
		case name := <-fire:
			if name == stackChanged {
				reload()
			} else if f, ok := fns[name]; ok {
				redeploy(f)
			}
		}
	}
}

// within reports whether p is dir or lies under it.
func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+string(filepath.Separator)) || dir == "/"
}
