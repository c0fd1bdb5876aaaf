package catalog

import (
	"fmt"
	"maps"
	"strconv"
	"time"

	"faasd/config"
)

// RevisionAnnotation records what a function's replicas were last restarted for, usually
// the content hash of a build (`faasd up`). It is part of the spec, so changing it rolls the
// replicas over like any other change, and it is reported like any other annotation.
const RevisionAnnotation = "com.faasd.build-hash"

// Restart rolls a function's replicas over without changing what the spec says: new
// replicas start, take over once ready, and the old ones drain. It is how a client that
// rebuilt a function's files tells the daemon, including for functions of the configuration
// file, which the API cannot otherwise change. A non-empty revision that is already the
// function's is a no-op (false); an empty one always restarts.
func (r *Catalog) Restart(name, revision string) (bool, error) {
	if revision == "" {
		revision = "restart-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if f, ok := r.file[name]; ok {
		if f.Annotations[RevisionAnnotation] == revision {
			return false, nil
		}
		r.file[name] = withRevision(f, revision)
		r.applyLocked()
		return true, nil
	}
	old, ok := r.deployed[name]
	if !ok {
		return false, fmt.Errorf("function %s: %w", name, ErrNotFound)
	}
	if old.Deployment.Annotations[RevisionAnnotation] == revision {
		return false, nil
	}
	d := old.Deployment
	d.Annotations = maps.Clone(d.Annotations)
	if d.Annotations == nil {
		d.Annotations = map[string]string{}
	}
	d.Annotations[RevisionAnnotation] = revision
	spec, err := specOf(&d, r.gateway, config.LocalNames(r.gateway))
	if err != nil {
		return false, err
	}
	fn := &Function{Spec: spec, Deployment: d, Source: old.Source, CreatedAt: old.CreatedAt}
	if err := r.persist(fn); err != nil {
		return false, err
	}
	r.deployed[name] = fn
	r.applyLocked()
	return true, nil
}

// keepRevisions carries the revision of each file function over a reload of the file,
// which knows nothing of it: otherwise every reload would roll restarted functions over
// once more, and report them as never restarted.
func (r *Catalog) keepRevisions(fns map[string]*config.Function) map[string]*config.Function {
	out := make(map[string]*config.Function, len(fns))
	for n, f := range fns {
		out[n] = f
		old, ok := r.file[n]
		if !ok {
			continue
		}
		if rev := old.Annotations[RevisionAnnotation]; rev != "" && f.Annotations[RevisionAnnotation] == "" {
			out[n] = withRevision(f, rev)
		}
	}
	return out
}

func withRevision(f *config.Function, revision string) *config.Function {
	c := *f
	c.Annotations = maps.Clone(f.Annotations)
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	c.Annotations[RevisionAnnotation] = revision
	return &c
}
