package deploy

import (
	"bytes"
	"cmp"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"faasd/api"
	"faasd/client"
	"faasd/config"
	"faasd/stack"
)

// daemon is a gateway's API as deploying sees it: a set of functions, and answers a test
// may force for a route.
type daemon struct {
	mu       sync.Mutex
	fns      map[string]api.FunctionStatus
	calls    []string
	fail     map[string]error // "Deploy", "Update", "Restart" → what to answer
	appear   map[string]int   // function → Function calls before it shows up
	onDeploy func()           // runs, under the lock, when Deploy is called
}

func newDaemon(fns ...api.FunctionStatus) *daemon {
	d := &daemon{fns: map[string]api.FunctionStatus{}, fail: map[string]error{}, appear: map[string]int{}}
	for _, f := range fns {
		d.fns[f.Name] = f
	}
	return d
}

func (d *daemon) record(call string) error {
	d.calls = append(d.calls, call)
	if err, ok := d.fail[call]; ok {
		delete(d.fail, call)
		return err
	}
	return nil
}

func (d *daemon) Functions(context.Context) ([]api.FunctionStatus, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []api.FunctionStatus
	for _, f := range d.fns {
		out = append(out, f)
	}
	return out, nil
}

func (d *daemon) Function(_ context.Context, name string) (api.FunctionStatus, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if n := d.appear[name]; n > 0 {
		d.appear[name] = n - 1
		return api.FunctionStatus{}, &client.StatusError{Status: 404}
	}
	f, ok := d.fns[name]
	if !ok {
		return f, &client.StatusError{Status: 404, Body: "no such function: " + name}
	}
	return f, nil
}

func (d *daemon) Deploy(_ context.Context, dep api.Deployment) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.onDeploy != nil {
		d.onDeploy()
	}
	if err := d.record("Deploy"); err != nil {
		return err
	}
	d.fns[dep.Service] = api.FunctionStatus{Name: dep.Service, Source: "api", Annotations: dep.Annotations, Workdir: dep.Workdir}
	return nil
}

func (d *daemon) Update(_ context.Context, dep api.Deployment) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.record("Update"); err != nil {
		return err
	}
	d.fns[dep.Service] = api.FunctionStatus{Name: dep.Service, Source: "api", Annotations: dep.Annotations, Workdir: dep.Workdir}
	return nil
}

func (d *daemon) Restart(_ context.Context, name, revision string) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.record("Restart"); err != nil {
		return false, err
	}
	f := d.fns[name]
	if f.Annotations[stack.BuildHashAnnotation] == revision {
		return false, nil
	}
	f.Annotations = map[string]string{stack.BuildHashAnnotation: revision}
	d.fns[name] = f
	return true, nil
}

// project is a stack file with one function, hello, in its own folder.
func project(t *testing.T) (*config.Config, *config.Function) {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "hello"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "hello", "handler.sh"), []byte("cat\n"), 0o755)
	path := filepath.Join(dir, "faasd.toml")
	os.WriteFile(path, []byte("[functions.hello]\nworkdir = \"hello\"\nfprocess = \"./handler.sh\"\n"), 0o644)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, cfg.Functions["hello"]
}

func TestDeployChoosesWhatTheDaemonAgreesTo(t *testing.T) {
	cfg, f := project(t)
	tree, err := stack.TreeHash(f, cfg.Gateway.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	built, err := stack.Deployment(f, tree)
	if err != nil {
		t.Fatal(err)
	}
	buildHash := built.Annotations[stack.BuildHashAnnotation]
	fromAPI := func(hash string) api.FunctionStatus {
		return api.FunctionStatus{Name: "hello", Source: "api", Workdir: f.Workdir, Annotations: map[string]string{stack.BuildHashAnnotation: hash}}
	}
	fromFile := func(workdir, hash string) api.FunctionStatus {
		return api.FunctionStatus{Name: "hello", Source: "file", Workdir: workdir, Annotations: map[string]string{stack.BuildHashAnnotation: hash}}
	}
	withBuild := *f
	withBuild.Build = []string{"true"}
	for _, tc := range []struct {
		name     string
		daemon   *daemon
		calls    []string
		progress string // in the progress lines
		err      string
		f        *config.Function // default f, which has no build step
	}{
		{"new function", newDaemon(), []string{"Deploy"}, "==> hello: deployed: http://gw/function/hello", "", nil},
		{"deployed, unchanged build", newDaemon(fromAPI(buildHash)), nil, "==> hello: unchanged: http://gw/function/hello", "", nil},
		{"deployed, new build", newDaemon(fromAPI("old")), []string{"Update"}, "==> hello: updated, rolling over", "", nil},
		{"removed meanwhile", func() *daemon {
			d := newDaemon(fromAPI("old"))
			d.fail["Update"] = &client.StatusError{Status: 404}
			return d
		}(), []string{"Update", "Deploy"}, "==> hello: deployed", "", nil},
		{"the daemon's file, rebuilt", newDaemon(fromFile(f.Workdir, "old")), []string{"Restart"},
			"==> hello: rebuilt, rolling over (served from the daemon's configuration file)", "", &withBuild},
		{"the daemon's file, no build step, other files", newDaemon(fromFile(f.Workdir, "old")), []string{"Restart"},
			"==> hello: rolling over to its current files (served from the daemon's configuration file)", "", nil},
		{"the daemon's file, same build", newDaemon(fromFile(f.Workdir, tree)), nil,
			"==> hello: unchanged (served from the daemon's configuration file)", "", nil},
		{"a daemon that cannot restart", func() *daemon {
			d := newDaemon(fromFile(f.Workdir, "old"))
			d.fail["Restart"] = &client.StatusError{Status: http.StatusMethodNotAllowed}
			return d
		}(), []string{"Restart"}, "", "predates POST /system/restart-function", nil},
		{"another function of that name in the daemon's file", newDaemon(fromFile("/elsewhere", "old")), nil, "",
			"the daemon's configuration file defines another function of that name (workdir /elsewhere", nil},
		{"deployed meanwhile by another client", func() *daemon {
			d := newDaemon()
			d.fail["Deploy"] = &client.StatusError{Status: http.StatusConflict}
			return d
		}(), []string{"Deploy", "Update"}, "==> hello: deployed", "", nil},
		{"the daemon read it from its file first", func() *daemon {
			d := newDaemon()
			d.fail["Deploy"] = &client.StatusError{Status: http.StatusConflict}
			d.onDeploy = func() { d.fns["hello"] = fromFile(f.Workdir, "") }
			return d
		}(), []string{"Deploy", "Restart"}, "==> hello: rolling over to its current files (served from the daemon's configuration file)", "", nil},
		{"refused", func() *daemon {
			d := newDaemon()
			d.fail["Deploy"] = &client.StatusError{Status: 400, Body: "invalid deployment: envVars"}
			return d
		}(), []string{"Deploy"}, "", "deploy hello: 400: invalid deployment: envVars", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			dp := New(tc.daemon, "http://gw", cfg, "/usr/bin:/bin", &out)
			if err := dp.Refresh(context.Background()); err != nil {
				t.Fatal(err)
			}
			_, err := dp.Deploy(context.Background(), cmp.Or(tc.f, f))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(tc.daemon.calls, tc.calls) {
				t.Errorf("calls %q, want %q", tc.daemon.calls, tc.calls)
			}
			if !strings.Contains(out.String(), tc.progress) {
				t.Errorf("progress %q, want %q", out.String(), tc.progress)
			}
			if tc.f == nil && strings.Contains(out.String(), "rebuilt") {
				t.Errorf("progress %q: a function without a build step was not rebuilt", out.String())
			}
		})
	}
}

// A function whose program cannot run is an error before anything is sent, whatever the
// daemon runs: nothing reports success for a function that can only fail.
func TestDeployRefusesAFunctionWhoseProgramCannotRun(t *testing.T) {
	cfg, f := project(t)
	missing := *f
	missing.Fprocess = "./handler.py"
	elsewhere := *f
	elsewhere.Name, elsewhere.Fprocess = "other", "sha5sum -b"
	for _, d := range []*daemon{newDaemon(), newDaemon(api.FunctionStatus{Name: "hello", Source: "file", Workdir: f.Workdir})} {
		var out bytes.Buffer
		dp := New(d, "http://gw", cfg, "/usr/bin:/bin", &out)
		if err := dp.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		_, err := dp.Deploy(context.Background(), &missing)
		want := "function hello cannot run: program ./handler.py: " + filepath.Join(f.Workdir, "handler.py") + " does not exist (relative to the workdir " + f.Workdir + ")"
		if err == nil || err.Error() != want {
			t.Errorf("Deploy = %v\nwant %s", err, want)
		}
		if len(d.calls) > 0 || out.Len() > 0 {
			t.Errorf("sent %q and said %q for a function that cannot run", d.calls, out.String())
		}
	}
	err := Programs([]*config.Function{f, &missing, &elsewhere}, "/usr/bin:/bin")
	if err == nil || !strings.Contains(err.Error(), "function hello cannot run") ||
		!strings.Contains(err.Error(), "\nfunction other cannot run: program sha5sum: not found in any directory of PATH (/usr/bin:/bin)") {
		t.Errorf("Programs = %v, want both functions that cannot run", err)
	}
	if err := Programs([]*config.Function{f}, ""); err != nil {
		t.Errorf("Programs of a function that runs: %v", err)
	}
}

// When the daemon serves this very stack file, a function it has not read yet is waited
// for and restarted, never deployed a second time through the API.
func TestNewFunctionOfTheDaemonsFileIsWaitedFor(t *testing.T) {
	cfg, f := project(t)
	other := &config.Function{Name: "other", Workdir: filepath.Dir(f.Workdir)}
	cfg.Functions["other"] = other
	d := newDaemon(api.FunctionStatus{Name: "other", Source: "file", Workdir: other.Workdir})
	var out bytes.Buffer
	dp := New(d, "http://gw", cfg, "/usr/bin:/bin", &out)
	if err := dp.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	d.mu.Lock()
	d.appear["hello"] = 2 // not read yet at the first two looks
	d.fns["hello"] = api.FunctionStatus{Name: "hello", Source: "file", Workdir: f.Workdir}
	d.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := dp.Deploy(ctx, f); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d.calls, []string{"Restart"}) {
		t.Errorf("calls %q, want only a restart", d.calls)
	}
	if !strings.Contains(out.String(), "==> hello: waiting for the daemon to read it from "+cfg.Path) {
		t.Errorf("progress %q", out.String())
	}
}
