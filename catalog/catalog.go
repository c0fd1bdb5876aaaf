// Package catalog owns the set of functions the daemon runs: those of faasd.toml and
// those deployed through the API, which it persists in the state directory so that they
// come back after a restart or a crash. It also owns the secrets store. It hands the
// merged set to its Target (the service gate, which passes it on to the supervisor); it
// never runs processes or serves HTTP itself.
package catalog

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"faasd/api"
	"faasd/config"
	"faasd/internal/atomicfile"
	"faasd/statedir"
)

// Errors callers branch on.
var (
	ErrNotFound    = errors.New("not found")
	ErrExists      = errors.New("already exists")
	ErrFileManaged = errors.New("defined in the configuration file")
	ErrConflict    = errors.New("conflict")
)

// Target is handed the whole merged set of functions on every change: in the daemon, the
// service gate in front of the supervisor.
type Target interface {
	Apply(map[string]*config.Function)
}

// Function is one entry of the catalog.
type Function struct {
	Spec       *config.Function
	Deployment api.Deployment // as deployed, or described from the file
	Source     string         // "file" or "api"
	CreatedAt  time.Time
}

// record is what the state directory keeps of an API deployment.
type record struct {
	Deployment api.Deployment `json:"deployment"`
	CreatedAt  time.Time      `json:"createdAt"`
}

// Catalog is the daemon's set of functions. Functions of the configuration file win
// name clashes: the API cannot create, change or remove them (409), and a deployed function
// whose name later appears in the file is shadowed by it, and comes back if the file
// drops the name again.
type Catalog struct {
	dir     string // deployed functions, one NAME.json each
	secrets *Secrets
	target  Target
	log     *slog.Logger

	mu       sync.Mutex
	gateway  config.Gateway
	fileName string
	fileInfo *api.ConfigInfo // nil until SetFile
	file     map[string]*config.Function
	fileAt   map[string]time.Time
	deployed map[string]*Function
}

// Open loads the functions deployed through the API from the state directory, and opens
// its secrets store.
func Open(state statedir.Layout, g config.Gateway, target Target, log *slog.Logger) (*Catalog, error) {
	r := &Catalog{
		dir:      state.Functions(),
		target:   target,
		log:      log,
		gateway:  g,
		file:     map[string]*config.Function{},
		fileAt:   map[string]time.Time{},
		deployed: map[string]*Function{},
	}
	var err error
	if r.secrets, err = openSecrets(state.Secrets()); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(r.dir, 0o700); err != nil {
		return nil, fmt.Errorf("functions dir: %w", err)
	}
	entries, err := os.ReadDir(r.dir)
	if err != nil {
		return nil, fmt.Errorf("functions dir: %w", err)
	}
	own := config.LocalNames(g)
	for _, e := range entries {
		path := filepath.Join(r.dir, e.Name())
		if strings.HasSuffix(e.Name(), ".tmp") {
			// A write the daemon did not finish (this version's, or an older one's
			// NAME.json.*.tmp); the rename never happened, so the previous version, if
			// any, is intact.
			os.Remove(path)
			continue
		}
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		fn, err := r.load(path, own)
		if err != nil {
			log.Error("deployed function not loaded", "file", path, "err", err)
			continue
		}
		r.deployed[fn.Spec.Name] = fn
	}
	return r, nil
}

// load reads a persisted deployment. It passes the same checks as a new one, so that a
// deployment that a later faasd.toml or version no longer allows (a user, a host) is not
// run: the error is logged and the file stays for the operator.
func (r *Catalog) load(path string, own config.OwnNames) (*Function, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rec record
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, err
	}
	spec, err := specOf(&rec.Deployment, r.gateway, own)
	if err != nil {
		return nil, err
	}
	if spec.Name+".json" != filepath.Base(path) {
		return nil, fmt.Errorf("file name does not match function %q", spec.Name)
	}
	return &Function{Spec: spec, Deployment: rec.Deployment, Source: "api", CreatedAt: rec.CreatedAt}, nil
}

// Secrets is the secrets store.
func (r *Catalog) Secrets() *Secrets { return r.secrets }

// SetFile replaces the functions of the configuration file and applies the result.
func (r *Catalog) SetFile(name string, fns map[string]*config.Function) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fns = r.keepRevisions(fns)
	r.fileName = filepath.Base(name)
	now := time.Now()
	r.fileInfo = &api.ConfigInfo{File: name, LoadedAt: now}
	for n, f := range fns {
		if old, ok := r.file[n]; !ok || !old.Equal(f) {
			r.fileAt[n] = now
		}
		if d, ok := r.deployed[n]; ok {
			r.log.Warn("the configuration file shadows a deployed function of the same name", "function", n, "deployed", d.CreatedAt)
		}
	}
	for n := range r.fileAt {
		if _, ok := fns[n]; !ok {
			delete(r.fileAt, n)
		}
	}
	r.file = fns
	r.applyLocked()
}

// RefuseFile records that the configuration file could not be read again: its functions
// run on as they were, and File reports err until the next SetFile.
func (r *Catalog) RefuseFile(name string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fileInfo == nil {
		r.fileInfo = &api.ConfigInfo{File: name}
	}
	r.fileInfo.ReloadError = &api.ReloadError{Error: err.Error(), File: name, Time: time.Now()}
}

// File reports the configuration file: which, when its functions were set, and the last
// refused reload since. False before the first SetFile.
func (r *Catalog) File() (api.ConfigInfo, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fileInfo == nil {
		return api.ConfigInfo{}, false
	}
	info := *r.fileInfo
	if info.ReloadError != nil {
		e := *info.ReloadError
		info.ReloadError = &e
	}
	return info, true
}

// applyLocked hands the merged set to the target. Host names go to one function each, in
// an order that does not depend on map iteration: the file's first (it is checked for
// clashes when parsed), then deployed functions by name. A deployed function loses the
// hosts that another already has, with a warning; the API refuses such a deployment with
// 409, so this happens when the file later claims the host.
func (r *Catalog) applyLocked() {
	all := make(map[string]*config.Function, len(r.file)+len(r.deployed))
	maps.Copy(all, r.file)
	owner := map[string]string{}
	for n, f := range r.file {
		for _, h := range f.Hosts {
			owner[h] = n
		}
	}
	for _, n := range slices.Sorted(maps.Keys(r.deployed)) {
		if _, shadowed := r.file[n]; shadowed {
			continue
		}
		spec := r.deployed[n].Spec
		kept := slices.DeleteFunc(slices.Clone(spec.Hosts), func(h string) bool {
			if other, taken := owner[h]; taken && other != n {
				r.log.Warn("host name dropped from a deployed function: another function has it", "function", n, "host", h, "owner", other)
				return true
			}
			return false
		})
		if len(kept) != len(spec.Hosts) {
			c := *spec
			c.Hosts = kept
			spec = &c
		}
		for _, h := range spec.Hosts {
			owner[h] = n
		}
		all[n] = spec
	}
	r.target.Apply(all)
}

// Get returns one function.
func (r *Catalog) Get(name string) (Function, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.getLocked(name)
}

func (r *Catalog) getLocked(name string) (Function, bool) {
	if f, ok := r.file[name]; ok {
		return Function{Spec: f, Deployment: fromSpec(f), Source: "file", CreatedAt: r.fileAt[name]}, true
	}
	if f, ok := r.deployed[name]; ok {
		return *f, true
	}
	return Function{}, false
}

// List returns every function, by name.
func (r *Catalog) List() []Function {
	r.mu.Lock()
	defer r.mu.Unlock()
	names := slices.Collect(maps.Keys(r.file))
	for n := range r.deployed {
		if _, ok := r.file[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	out := make([]Function, 0, len(names))
	for _, n := range names {
		f, _ := r.getLocked(n)
		out = append(out, f)
	}
	return out
}

// Create deploys a new function.
func (r *Catalog) Create(d api.Deployment) error {
	return r.put(d, false)
}

// Update replaces the whole spec of a deployed function; its replicas roll over.
func (r *Catalog) Update(d api.Deployment) error {
	return r.put(d, true)
}

func (r *Catalog) put(d api.Deployment, update bool) error {
	d.Namespace = api.Namespace
	spec, err := specOf(&d, r.gateway, config.LocalNames(r.gateway))
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	// Under the lock, so that a secret cannot be removed between this check and the
	// deployment that needs it (DeleteSecret holds the lock too).
	for _, s := range d.Secrets {
		if !r.secrets.Exists(s) {
			return fmt.Errorf("%w: unable to find secret: %s", ErrInvalid, s)
		}
	}
	if _, ok := r.file[d.Service]; ok {
		return fmt.Errorf("function %s: %w %s: change it there", d.Service, ErrFileManaged, r.fileName)
	}
	if err := r.hostsFreeLocked(spec); err != nil {
		return err
	}
	old, exists := r.deployed[d.Service]
	switch {
	case update && !exists:
		return fmt.Errorf("function %s: %w", d.Service, ErrNotFound)
	case !update && exists:
		return fmt.Errorf("function %s: %w", d.Service, ErrExists)
	}
	fn := &Function{Spec: spec, Deployment: d, Source: "api", CreatedAt: time.Now().UTC()}
	if exists {
		fn.CreatedAt = old.CreatedAt
	}
	if err := r.persist(fn); err != nil {
		return err
	}
	r.deployed[d.Service] = fn
	r.applyLocked()
	return nil
}

// hostsFreeLocked refuses host names that another function already has.
func (r *Catalog) hostsFreeLocked(spec *config.Function) error {
	for _, h := range spec.Hosts {
		for _, other := range r.functionsLocked() {
			if other.Name != spec.Name && slices.Contains(other.Hosts, h) {
				return fmt.Errorf("hosts: %q: %w: function %s has it", h, ErrConflict, other.Name)
			}
		}
	}
	return nil
}

// functionsLocked lists every spec the catalog holds, shadowed deployments included: they
// come back when the file drops their name.
func (r *Catalog) functionsLocked() []*config.Function {
	out := make([]*config.Function, 0, len(r.file)+len(r.deployed))
	for _, f := range r.file {
		out = append(out, f)
	}
	for _, f := range r.deployed {
		out = append(out, f.Spec)
	}
	return out
}

// DeleteSecret removes a secret that no function lists. One that a function lists is
// refused (409, naming the functions): its running replicas keep their copies, but the
// next replica could not start.
func (r *Catalog) DeleteSecret(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var users []string
	for _, f := range r.functionsLocked() {
		if slices.Contains(f.Secrets, name) && !slices.Contains(users, f.Name) {
			users = append(users, f.Name)
		}
	}
	if len(users) > 0 {
		slices.Sort(users)
		return fmt.Errorf("secret %s: %w: in use by %s; take it out of their secrets first", name, ErrConflict, strings.Join(users, ", "))
	}
	return r.secrets.Delete(name)
}

// Delete removes a deployed function; its replicas drain and stop.
func (r *Catalog) Delete(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.file[name]; ok {
		return fmt.Errorf("function %s: %w %s: remove it there", name, ErrFileManaged, r.fileName)
	}
	if _, ok := r.deployed[name]; !ok {
		return fmt.Errorf("function %s: %w", name, ErrNotFound)
	}
	if err := os.Remove(filepath.Join(r.dir, name+".json")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete function %s: %w", name, err)
	}
	delete(r.deployed, name)
	r.applyLocked()
	return nil
}

// persist writes a deployment so that a crash at any moment leaves either the old or the
// new version on disk, never a mix.
func (r *Catalog) persist(fn *Function) error {
	data, err := json.MarshalIndent(record{Deployment: fn.Deployment, CreatedAt: fn.CreatedAt}, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(r.dir, fn.Spec.Name+".json"), data, 0o600); err != nil {
		return fmt.Errorf("persist function %s: %w", fn.Spec.Name, err)
	}
	return nil
}
