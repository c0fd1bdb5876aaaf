package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"strings"
	"time"

	"faasd/config"
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
	var d *deployer
	if c.deploy {
		gw, err := connectTo(env, c.client.gateway, cfg)
		if err != nil {
			return err
		}
		d = &deployer{env: env, gw: gw, cfg: cfg}
		// Before any build: an unreachable gateway or bad credentials are better told now
		// than after minutes of compiling.
		if err := d.refresh(ctx); err != nil {
			return err
		}
	}
	if c.build {
		for _, f := range fns {
			if err := buildFunction(ctx, env, f); err != nil {
				return err
			}
		}
	}
	trees := map[string]string{}
	if c.deploy {
		for _, f := range fns {
			tree, err := d.deploy(ctx, f)
			if err != nil {
				return err
			}
			trees[f.Name] = tree
		}
	}
	if c.watch {
		return c.watchStack(ctx, env, cfg, d, trees)
	}
	return nil
}

// buildFunction runs one function's build, streaming its output between a progress line
// and a result line with the elapsed time.
func buildFunction(ctx context.Context, env *environment, f *config.Function) error {
	if len(f.Build) == 0 {
		fmt.Fprintf(env.stdout, "==> %s: no build step\n", f.Name)
		return nil
	}
	fmt.Fprintf(env.stdout, "==> %s: building: %s (in %s)\n", f.Name, strings.Join(f.Build, " "), f.Workdir)
	start := time.Now()
	if err := stack.Build(ctx, f, env.stdout); err != nil {
		fmt.Fprintf(env.stdout, "==> %s: build failed after %s\n", f.Name, elapsed(start))
		return err
	}
	fmt.Fprintf(env.stdout, "==> %s: built in %s\n", f.Name, elapsed(start))
	return nil
}

func elapsed(since time.Time) time.Duration {
	return time.Since(since).Round(10 * time.Millisecond)
}

// deployer deploys functions of one stack file to one gateway, as the daemon agrees:
// functions deployed through the API are created or updated there; functions the daemon
// serves from this very stack file are the daemon's, and only get restarted.
type deployer struct {
	env    *environment
	gw     *gateway
	cfg    *config.Config
	daemon map[string]functionStatus
	// servesFile: the daemon runs a function of this stack file from its own
	// configuration, so it serves this file, and reads the file's new functions itself.
	servesFile bool
}

// refresh reads what the daemon runs.
func (d *deployer) refresh(ctx context.Context) error {
	list, err := d.gw.functions(ctx)
	if err != nil {
		return err
	}
	d.daemon = make(map[string]functionStatus, len(list))
	d.servesFile = false
	for _, st := range list {
		d.daemon[st.Name] = st
		if f, ok := d.cfg.Functions[st.Name]; ok && st.Source == "file" && st.Workdir == f.Workdir {
			d.servesFile = true
		}
	}
	return nil
}

// refreshOne reads what the daemon runs of one function.
func (d *deployer) refreshOne(ctx context.Context, name string) error {
	var st functionStatus
	_, err := d.gw.call(ctx, "GET", "/system/function/"+name, nil, &st)
	switch {
	case err == nil:
		d.daemon[name] = st
	case isStatus(err, http.StatusNotFound):
		delete(d.daemon, name)
	default:
		return err
	}
	return nil
}

// deploy makes the daemon run f as built now, and returns the hash of its files. An
// unchanged function is left alone.
func (d *deployer) deploy(ctx context.Context, f *config.Function) (string, error) {
	tree, err := stack.TreeHash(f, d.cfg.Gateway.StateDir)
	if err != nil {
		return "", err
	}
	st, found := d.daemon[f.Name]
	if !found && d.servesFile {
		// The daemon serves this file and reloads it on its own; a function it has not
		// read yet is about to appear. Deploying it through the API as well would leave a
		// second copy behind the file's.
		fmt.Fprintf(d.env.stdout, "==> %s: waiting for the daemon to read it from %s\n", f.Name, d.cfg.Path)
		if st, err = d.awaitFileFunction(ctx, f.Name); err != nil {
			return "", err
		}
		found = true
	}
	if found && st.Source == "file" {
		return tree, d.restart(ctx, f, st, tree)
	}
	dep, err := stack.Deployment(f, tree)
	if err != nil {
		return "", err
	}
	url := d.gw.url + "/function/" + f.Name
	if found {
		if st.Annotations[stack.BuildHashAnnotation] == dep.Annotations[stack.BuildHashAnnotation] {
			fmt.Fprintf(d.env.stdout, "==> %s: unchanged: %s\n", f.Name, url)
			return tree, nil
		}
		_, err := d.gw.call(ctx, "PUT", "/system/functions", dep, nil, http.StatusOK, http.StatusAccepted)
		if err == nil {
			fmt.Fprintf(d.env.stdout, "==> %s: updated, rolling over: %s\n", f.Name, url)
			return tree, nil
		}
		if !isStatus(err, http.StatusNotFound) { // removed meanwhile: create it below
			return "", fmt.Errorf("deploy %s: %w", f.Name, err)
		}
	}
	_, err = d.gw.call(ctx, "POST", "/system/functions", dep, nil, http.StatusOK, http.StatusAccepted)
	if isStatus(err, http.StatusConflict) {
		// Someone was quicker: the daemon read it from its file, or another deploy.
		if err := d.refreshOne(ctx, f.Name); err != nil {
			return "", err
		}
		if st, ok := d.daemon[f.Name]; ok && st.Source == "file" {
			return tree, d.restart(ctx, f, st, tree)
		}
		_, err = d.gw.call(ctx, "PUT", "/system/functions", dep, nil, http.StatusOK, http.StatusAccepted)
	}
	if err != nil {
		return "", fmt.Errorf("deploy %s: %w", f.Name, err)
	}
	fmt.Fprintf(d.env.stdout, "==> %s: deployed: %s\n", f.Name, url)
	return tree, nil
}

// restart rolls over a function the daemon serves from its own configuration file, once
// the files it runs have changed. The daemon answers 409 to any change of such a function
// through the API: its spec is the file's. What the file cannot say is that the program
// was rebuilt, which is what the restart route tells, with the files' hash as revision;
// the daemon keeps that revision, so an unchanged build is a no-op.
func (d *deployer) restart(ctx context.Context, f *config.Function, st functionStatus, tree string) error {
	url := d.gw.url + "/function/" + f.Name
	if st.Workdir != f.Workdir {
		return fmt.Errorf("deploy %s: the daemon's configuration file defines another function of that name (workdir %s, not %s): rename one of them", f.Name, st.Workdir, f.Workdir)
	}
	if st.Annotations[stack.BuildHashAnnotation] == tree {
		fmt.Fprintf(d.env.stdout, "==> %s: unchanged (served from the daemon's configuration file): %s\n", f.Name, url)
		return nil
	}
	status, err := d.gw.call(ctx, "POST", "/system/restart-function/"+f.Name, map[string]string{"revision": tree}, nil, http.StatusOK, http.StatusAccepted)
	var ae *apiError
	if asAPIError(err, &ae) && (ae.Status == http.StatusMethodNotAllowed || ae.Status == http.StatusNotFound && strings.HasPrefix(ae.Body, "404 page not found")) {
		return fmt.Errorf("deploy %s: the daemon serves it from its configuration file and cannot restart it (it predates POST /system/restart-function): restart the daemon to run the new build", f.Name)
	}
	if err != nil {
		return fmt.Errorf("restart %s: %w", f.Name, notFound(err, "function", f.Name))
	}
	if status == http.StatusOK {
		fmt.Fprintf(d.env.stdout, "==> %s: unchanged (served from the daemon's configuration file): %s\n", f.Name, url)
		return nil
	}
	fmt.Fprintf(d.env.stdout, "==> %s: rebuilt, rolling over (served from the daemon's configuration file): %s\n", f.Name, url)
	return nil
}

// awaitFileFunction waits, with a deadline, for the daemon to read a function from its
// configuration file. Polling is the only way to watch another process's registry.
func (d *deployer) awaitFileFunction(ctx context.Context, name string) (functionStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := d.refreshOne(ctx, name); err != nil && ctx.Err() == nil {
			return functionStatus{}, err
		}
		if st, ok := d.daemon[name]; ok {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return functionStatus{}, fmt.Errorf("deploy %s: the daemon serves %s but did not read the function within 15s: is the file valid? (faasd build -f %s checks it)", name, d.cfg.Path, d.cfg.Path)
		case <-tick.C:
		}
	}
}
