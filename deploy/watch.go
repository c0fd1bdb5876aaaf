package deploy

import (
	"context"
	"fmt"
	"time"

	"faasd/config"
	"faasd/filewatch"
	"faasd/stack"
)

// settle is how long a function's files must be quiet before Watch rebuilds it: editors and
// builds write several times per save.
const settle = 250 * time.Millisecond

// stackKey is the key under which changes of the stack file itself are reported; function
// names cannot hold a NUL.
const stackKey = "\x00stack"

// Watch keeps rebuilding and redeploying the functions matching filter whose files change,
// and the functions the stack file adds or changes, until ctx ends. trees holds the hash
// of each function's files as last deployed; a change that leaves the hash alone (the
// build's own output landing) does nothing. A failed build or deploy is reported to logf
// and the watch goes on.
func (d *Deployer) Watch(ctx context.Context, filter string, trees map[string]string, logf func(format string, a ...any)) error {
	w := &watch{d: d, filter: filter, trees: trees, logf: logf, fns: map[string]*config.Function{}}
	fw, err := filewatch.New(settle, func(err error) { logf("faasd: watch: %v", err) })
	if err != nil {
		return err
	}
	defer fw.Close()
	w.files = fw
	if err := fw.File(d.stack.Path, stackKey); err != nil {
		return err
	}
	selected, _ := stack.Select(d.stack, filter)
	for _, f := range selected {
		w.add(f)
	}
	fmt.Fprintf(d.out, "==> watching %d functions and %s for changes (Ctrl-C stops)\n", len(w.fns), d.stack.Path)
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(d.out, "==> stopped watching")
			return nil
		case key := <-fw.Changes():
			if key == stackKey {
				w.reload(ctx)
			} else if f, ok := w.fns[key]; ok {
				w.redeploy(ctx, f)
			}
		}
	}
}

// watch is the state of one Watch.
type watch struct {
	d      *Deployer
	filter string
	trees  map[string]string
	logf   func(format string, a ...any)
	files  *filewatch.Watcher
	fns    map[string]*config.Function // watched, by name
}

// add watches a function's folder, but not the stack's state directory within it.
func (w *watch) add(f *config.Function) {
	w.fns[f.Name] = f
	stateDir := w.d.stack.Gateway.StateDir
	w.files.Tree(f.Workdir, f.Name, func(dir string) bool { return stack.Skipped(dir, []string{stateDir}) })
}

// redeploy builds and deploys a function whose files changed.
func (w *watch) redeploy(ctx context.Context, f *config.Function) {
	stateDir := w.d.stack.Gateway.StateDir
	tree, err := stack.TreeHash(f, stateDir)
	if err != nil {
		w.logf("faasd: %v", err)
		return
	}
	if tree == w.trees[f.Name] {
		return
	}
	fmt.Fprintf(w.d.out, "==> %s: changed\n", f.Name)
	if err := Build(ctx, w.d.out, f); err != nil {
		w.logf("faasd: %v", err)
		// Its own output must not trigger another attempt; the next edit will.
		w.trees[f.Name], _ = stack.TreeHash(f, stateDir)
		return
	}
	if err := w.d.refreshOne(ctx, f.Name); err != nil {
		w.logf("faasd: %v", err)
		return
	}
	if tree, err = w.d.Deploy(ctx, f); err != nil {
		w.logf("faasd: %v", err)
		w.trees[f.Name], _ = stack.TreeHash(f, stateDir)
		return
	}
	w.trees[f.Name] = tree
}

// reload reads the stack file again and deploys what it adds or changes; an invalid file
// is reported and the stack stays as it was.
func (w *watch) reload(ctx context.Context) {
	next, err := config.Load(w.d.stack.Path)
	if err != nil {
		w.logf("faasd: %v (keeping the stack as it was)", err)
		return
	}
	sel, err := stack.Select(next, w.filter)
	if err != nil {
		w.logf("faasd: %v", err)
		return
	}
	w.d.stack = next
	for _, f := range sel {
		if old, ok := w.fns[f.Name]; ok && old.Equal(f) {
			continue
		}
		fmt.Fprintf(w.d.out, "==> %s: changed in %s\n", f.Name, next.Path)
		w.add(f)
		delete(w.trees, f.Name) // a new spec deploys even when the files are the same
		w.redeploy(ctx, f)
	}
}
