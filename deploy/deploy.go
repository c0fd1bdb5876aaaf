// Package deploy makes a gateway run a stack file's functions as they are built: it runs
// their builds, deploys or updates them through the API, or, for functions the daemon
// serves from this very file, has it roll them over; Watch goes on doing so as their files
// change. It writes progress lines ("==> NAME: ...") for a person to read, and runs no
// process but the builds.
package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"faasd/api"
	"faasd/client"
	"faasd/config"
	"faasd/program"
	"faasd/stack"
)

// API is what deploying needs of a gateway; *client.Gateway has it. Errors are the
// client's: a *client.StatusError says what the gateway answered.
type API interface {
	Functions(ctx context.Context) ([]api.FunctionStatus, error)
	Function(ctx context.Context, name string) (api.FunctionStatus, error)
	Deploy(ctx context.Context, d api.Deployment) error
	Update(ctx context.Context, d api.Deployment) error
	Restart(ctx context.Context, name, revision string) (bool, error)
}

// fileWait bounds how long a deploy waits for a daemon to read a function it serves from
// its configuration file.
const fileWait = 15 * time.Second

// Deployer deploys functions of one stack file to one gateway, as the daemon agrees:
// functions deployed through the API are created or updated there; functions the daemon
// serves from this very stack file are the daemon's, and only get restarted.
type Deployer struct {
	api   API
	url   string // the gateway's, for the functions' URLs in progress lines
	stack *config.Config
	path  string // the PATH replicas get unless their env sets one, as far as we know
	out   io.Writer

	daemon map[string]api.FunctionStatus // what the daemon runs, as last read
	// servesFile: the daemon runs a function of this stack file from its own
	// configuration, so it serves this file, and reads the file's new functions itself.
	servesFile bool
}

// New returns a deployer of the functions of stack to the gateway at url, writing progress
// lines to out. path is the PATH the daemon hands to replicas, as far as the caller knows
// (its own: a daemon on this machine is usually started with the same). Call Refresh
// before the first Deploy.
func New(gw API, url string, stack *config.Config, path string, out io.Writer) *Deployer {
	return &Deployer{api: gw, url: url, stack: stack, path: path, out: out}
}

// Refresh reads what the daemon runs. Done before any build, it also tells at once that
// the gateway is unreachable or refuses the credentials.
func (d *Deployer) Refresh(ctx context.Context) error {
	list, err := d.api.Functions(ctx)
	if err != nil {
		return err
	}
	d.daemon = make(map[string]api.FunctionStatus, len(list))
	d.servesFile = false
	for _, st := range list {
		d.daemon[st.Name] = st
		if f, ok := d.stack.Functions[st.Name]; ok && st.Source == "file" && st.Workdir == f.Workdir {
			d.servesFile = true
		}
	}
	return nil
}

// refreshOne reads what the daemon runs of one function.
func (d *Deployer) refreshOne(ctx context.Context, name string) error {
	st, err := d.api.Function(ctx, name)
	switch {
	case err == nil:
		d.daemon[name] = st
	case client.IsStatus(err, http.StatusNotFound):
		delete(d.daemon, name)
	default:
		return err
	}
	return nil
}

// Deploy makes the daemon run f as built now, and returns the hash of its files. An
// unchanged function is left alone; one whose program cannot run is an error, and not
// sent.
func (d *Deployer) Deploy(ctx context.Context, f *config.Function) (string, error) {
	if err := Programs([]*config.Function{f}, d.path); err != nil {
		return "", err
	}
	tree, err := stack.TreeHash(f, d.stack.Gateway.StateDir)
	if err != nil {
		return "", err
	}
	st, found := d.daemon[f.Name]
	if !found && d.servesFile {
		// The daemon serves this file and reloads it on its own; a function it has not
		// read yet is about to appear. Deploying it through the API as well would leave a
		// second copy behind the file's.
		d.progress(f.Name, "waiting for the daemon to read it from %s", d.stack.Path)
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
	if found {
		return tree, d.update(ctx, f, st, dep, tree)
	}
	return tree, d.create(ctx, f, dep, tree)
}

// update replaces a deployed function's spec when its build changed.
func (d *Deployer) update(ctx context.Context, f *config.Function, st api.FunctionStatus, dep api.Deployment, tree string) error {
	if st.Annotations[stack.BuildHashAnnotation] == dep.Annotations[stack.BuildHashAnnotation] {
		d.progress(f.Name, "unchanged: %s", d.functionURL(f))
		return nil
	}
	err := d.api.Update(ctx, dep)
	if err == nil {
		d.progress(f.Name, "updated, rolling over: %s", d.functionURL(f))
		return nil
	}
	if !client.IsStatus(err, http.StatusNotFound) {
		return fmt.Errorf("deploy %s: %w", f.Name, err)
	}
	return d.create(ctx, f, dep, tree) // removed meanwhile
}

// create deploys a function the daemon does not run.
func (d *Deployer) create(ctx context.Context, f *config.Function, dep api.Deployment, tree string) error {
	err := d.api.Deploy(ctx, dep)
	if client.IsStatus(err, http.StatusConflict) {
		// Someone was quicker: the daemon read it from its file, or another deploy.
		if err := d.refreshOne(ctx, f.Name); err != nil {
			return err
		}
		if st, ok := d.daemon[f.Name]; ok && st.Source == "file" {
			return d.restart(ctx, f, st, tree)
		}
		err = d.api.Update(ctx, dep)
	}
	if err != nil {
		return fmt.Errorf("deploy %s: %w", f.Name, err)
	}
	d.progress(f.Name, "deployed: %s", d.functionURL(f))
	return nil
}

// restart rolls over a function the daemon serves from its own configuration file, once
// the files it runs have changed. The daemon answers 409 to any change of such a function
// through the API: its spec is the file's. What the file cannot say is that the program
// was rebuilt (or, without a build step, edited), which is what the restart route tells,
// with the files' hash as revision;
// the daemon keeps that revision, so an unchanged build is a no-op.
func (d *Deployer) restart(ctx context.Context, f *config.Function, st api.FunctionStatus, tree string) error {
	if st.Workdir != f.Workdir {
		return fmt.Errorf("deploy %s: the daemon's configuration file defines another function of that name (workdir %s, not %s): rename one of them", f.Name, st.Workdir, f.Workdir)
	}
	if st.Annotations[stack.BuildHashAnnotation] == tree {
		d.progress(f.Name, "unchanged (served from the daemon's configuration file): %s", d.functionURL(f))
		return nil
	}
	changed, err := d.api.Restart(ctx, f.Name, tree)
	if se, ok := errors.AsType[*client.StatusError](err); ok && (se.Status == http.StatusMethodNotAllowed || se.Status == http.StatusNotFound && strings.HasPrefix(se.Body, "404 page not found")) {
		return fmt.Errorf("deploy %s: the daemon serves it from its configuration file and cannot restart it (it predates POST /system/restart-function): restart the daemon to run the new build", f.Name)
	}
	if err != nil {
		if client.IsStatus(err, http.StatusNotFound) {
			err = fmt.Errorf("no such function: %s", f.Name)
		}
		return fmt.Errorf("restart %s: %w", f.Name, err)
	}
	if !changed {
		d.progress(f.Name, "unchanged (served from the daemon's configuration file): %s", d.functionURL(f))
		return nil
	}
	if len(f.Build) == 0 {
		d.progress(f.Name, "rolling over to its current files (served from the daemon's configuration file): %s", d.functionURL(f))
		return nil
	}
	d.progress(f.Name, "rebuilt, rolling over (served from the daemon's configuration file): %s", d.functionURL(f))
	return nil
}

// Programs reports every function of fns whose replicas could not run its program, looked
// up as they will (program.Check) with path as the daemon's PATH. Run after the builds,
// which may make the programs, and before anything is deployed, so that a deploy never
// reports success for a function that can only fail.
func Programs(fns []*config.Function, path string) error {
	var errs []error
	for _, f := range fns {
		if err := program.Check(f.Workdir, f.Program(), program.SearchPath(f.Env, path)); err != nil {
			errs = append(errs, fmt.Errorf("function %s cannot run: %w", f.Name, err))
		}
	}
	return errors.Join(errs...)
}

// awaitFileFunction waits, with a deadline, for the daemon to read a function from its
// configuration file. Polling is the only way to watch another process's catalog.
func (d *Deployer) awaitFileFunction(ctx context.Context, name string) (api.FunctionStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, fileWait)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := d.refreshOne(ctx, name); err != nil && ctx.Err() == nil {
			return api.FunctionStatus{}, err
		}
		if st, ok := d.daemon[name]; ok {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return api.FunctionStatus{}, fmt.Errorf("deploy %s: the daemon serves %s but did not read the function within %s: is the file valid? (faasd build -f %s checks it)", name, d.stack.Path, fileWait, d.stack.Path)
		case <-tick.C:
		}
	}
}

func (d *Deployer) functionURL(f *config.Function) string { return d.url + "/function/" + f.Name }

func (d *Deployer) progress(name, format string, a ...any) {
	fmt.Fprintf(d.out, "==> %s: %s\n", name, fmt.Sprintf(format, a...))
}

// Build runs one function's build, its output between a progress line and a result line
// with the elapsed time.
func Build(ctx context.Context, out io.Writer, f *config.Function) error {
	if len(f.Build) == 0 {
		fmt.Fprintf(out, "==> %s: no build step\n", f.Name)
		return nil
	}
	fmt.Fprintf(out, "==> %s: building: %s (in %s)\n", f.Name, strings.Join(f.Build, " "), f.Workdir)
	start := time.Now()
	if err := stack.Build(ctx, f, out); err != nil {
		fmt.Fprintf(out, "==> %s: build failed after %s\n", f.Name, elapsed(start))
		return err
	}
	fmt.Fprintf(out, "==> %s: built in %s\n", f.Name, elapsed(start))
	return nil
}

func elapsed(since time.Time) time.Duration {
	return time.Since(since).Round(10 * time.Millisecond)
}
