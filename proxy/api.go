package proxy

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"runtime"
	"syscall"
	"time"

	"github.com/julienschmidt/httprouter"

	"faasd/api"
	"faasd/catalog"
	"faasd/supervisor"
)

// Catalog is what the API needs of the function catalog.
type Catalog interface {
	List() []catalog.Function
	Get(name string) (catalog.Function, bool)
	Create(api.Deployment) error
	Update(api.Deployment) error
	Delete(name string) error
	Secrets() *catalog.Secrets
	DeleteSecret(name string) error
	// File is the daemon's configuration file, and a reload it refused (/system/info).
	File() (api.ConfigInfo, bool)
}

// Control is what the API needs of the supervisor.
type Control interface {
	Status(name string) (supervisor.Status, bool)
	Scale(name string, n int) error
	Logs(name string) (*supervisor.Logs, bool)
	RefreshSecret(name string) error
}

// maxAPIBody bounds /system request bodies: annotations can be large, deployments are not.
const maxAPIBody = 4 << 20

// ProviderName is what /system/info reports. Not "faasd": that name switches OpenFaaS's
// certifier to a lenient mode, and this provider wants the full checks.
const ProviderName = "faasd-process"

func (p *Proxy) apiRoutes(r *httprouter.Router) {
	handle := func(method, path string, h func(http.ResponseWriter, *http.Request, httprouter.Params)) {
		r.Handler(method, path, p.apiGuard(p.requireAuth(p.apiDeadlines(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			h(w, req, httprouter.ParamsFromContext(req.Context()))
		})))))
	}
	handle("GET", "/system/info", p.info)
	handle("GET", "/system/functions", p.listFunctions)
	handle("POST", "/system/functions", p.deployFunction)
	handle("PUT", "/system/functions", p.deployFunction)
	handle("DELETE", "/system/functions", p.deleteFunction)
	handle("GET", "/system/function/:name", p.getFunction)
	handle("POST", "/system/scale-function/:name", p.scaleFunction)
	handle("POST", "/system/restart-function/:name", p.restartFunction)
	handle("GET", "/system/namespaces", p.namespaces)
	handle("GET", "/system/secrets", p.listSecrets)
	handle("POST", "/system/secrets", p.putSecret)
	handle("PUT", "/system/secrets", p.putSecret)
	handle("DELETE", "/system/secrets", p.deleteSecret)
	handle("GET", "/system/logs", p.logs)
	if p.history != nil {
		handle("GET", "/system/history", p.historyOf)
	}
}

// apiDeadlines bounds an API request by the gateway's read and write timeouts, from when
// its handler starts. A log follow runs until its client leaves: a read deadline would
// end it too, as net/http ends a request's context when a read on its connection fails.
func (p *Proxy) apiDeadlines(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if isFollow(r) {
			_ = rc.SetReadDeadline(time.Time{})
			_ = rc.SetWriteDeadline(time.Time{})
		} else {
			now := time.Now()
			_ = rc.SetReadDeadline(now.Add(p.apiRead))
			_ = rc.SetWriteDeadline(now.Add(p.apiWrite))
			defer rc.SetWriteDeadline(time.Time{})
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxAPIBody)
		h.ServeHTTP(w, r)
	})
}

func (p *Proxy) info(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	v := api.Version{Release: p.version, SHA: p.commit}
	info := api.Info{
		Provider: api.Provider{Provider: ProviderName, Orchestration: "processes", Version: v},
		Version:  v,
		Arch:     runtime.GOARCH,
	}
	if p.queue != nil {
		q := p.queue.Info(r.Context())
		info.Queue = &q
	}
	if file, ok := p.catalog.File(); ok {
		info.Config = &file
	}
	info.Containment = p.contain
	writeJSON(w, http.StatusOK, info)
}

func (p *Proxy) status(fn catalog.Function) api.FunctionStatus {
	d := fn.Deployment
	labels := map[string]string{}
	maps.Copy(labels, d.Labels)
	labels["faas_function"] = fn.Spec.Name
	annotations := map[string]string{}
	maps.Copy(annotations, d.Annotations)
	st := api.FunctionStatus{
		Name: fn.Spec.Name, Image: d.Image, Namespace: api.Namespace, EnvProcess: d.EnvProcess,
		EnvVars: d.EnvVars, Constraints: d.Constraints, Secrets: d.Secrets, Labels: labels,
		Annotations: annotations, Limits: d.Limits, Requests: d.Requests,
		ReadOnlyRootFilesystem: d.ReadOnlyRootFilesystem, CreatedAt: fn.CreatedAt,
		InvocationCount: float64(p.stats.get(fn.Spec.Name).completed.Load()),
		Command:         d.Command, Workdir: d.Workdir, User: d.User, Source: fn.Source,
		ColdStarts: p.stats.get(fn.Spec.Name).coldStarts.Load(),
	}
	if len(st.EnvVars) == 0 {
		st.EnvVars = nil
	}
	if s, ok := p.control.Status(fn.Spec.Name); ok {
		st.Replicas = uint64(s.Desired)
		st.AvailableReplicas = uint64(s.Ready)
		st.Status, st.Starting, st.Failures, st.LastError = s.State, s.Starting, s.Failures, s.LastError
		st.Instances = p.instances(fn.Spec.Name, s.Replicas)
		st.OOMKills = s.OOMKills
		st.Usage = usage(s.Usage)
	}
	return st
}

// usage is what the supervisor measured, in OpenFaaS's terms; nil when nothing was.
func usage(u *supervisor.Usage) *api.Usage {
	if u == nil {
		return nil
	}
	return &api.Usage{CPU: u.CPUMillis, TotalMemoryBytes: float64(u.MemoryBytes)}
}

func (p *Proxy) listFunctions(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	if !validNamespace(w, r.URL.Query().Get("namespace")) {
		return
	}
	fns := p.catalog.List()
	out := make([]api.FunctionStatus, 0, len(fns))
	for _, fn := range fns {
		out = append(out, p.status(fn))
	}
	writeJSON(w, http.StatusOK, out)
}

func (p *Proxy) getFunction(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	if !validNamespace(w, r.URL.Query().Get("namespace")) {
		return
	}
	fn, ok := p.catalog.Get(ps.ByName("name"))
	if !ok {
		http.Error(w, "no such function: "+ps.ByName("name"), http.StatusNotFound)
		return
	}
	writeJSON(w, http.StatusOK, p.status(fn))
}

func (p *Proxy) deployFunction(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	var d api.Deployment
	if !readJSON(w, r, &d, bodyRequired) || !validNamespace(w, d.Namespace) {
		return
	}
	var err error
	if r.Method == http.MethodPost {
		err = p.catalog.Create(d)
	} else {
		err = p.catalog.Update(d)
	}
	if err != nil {
		apiError(w, err)
		return
	}
	// Replicas start in the background; clients must not wait for readiness here.
	w.WriteHeader(http.StatusAccepted)
}

func (p *Proxy) deleteFunction(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	var req struct {
		FunctionName string `json:"functionName"`
		Namespace    string `json:"namespace"`
	}
	if !readJSON(w, r, &req, bodyOptional) || !validNamespace(w, namespaceOf(r, req.Namespace)) {
		return
	}
	if req.FunctionName == "" {
		http.Error(w, "functionName is required", http.StatusBadRequest)
		return
	}
	if err := p.catalog.Delete(req.FunctionName); err != nil {
		apiError(w, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func (p *Proxy) scaleFunction(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	var req struct {
		ServiceName string `json:"serviceName"`
		Replicas    uint64 `json:"replicas"`
		Namespace   string `json:"namespace"`
	}
	if !readJSON(w, r, &req, bodyOptional) || !validNamespace(w, namespaceOf(r, req.Namespace)) {
		return
	}
	name := cmp.Or(ps.ByName("name"), req.ServiceName)
	if _, ok := p.catalog.Get(name); !ok {
		http.Error(w, "no such function: "+name, http.StatusNotFound)
		return
	}
	if req.Replicas > 1000 {
		http.Error(w, fmt.Sprintf("replicas: %d is more than 1000", req.Replicas), http.StatusBadRequest)
		return
	}
	if err := p.control.Scale(name, int(req.Replicas)); err != nil {
		apiError(w, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func (p *Proxy) namespaces(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
	writeJSON(w, http.StatusOK, []string{api.Namespace})
}

// namespaceOf is the namespace a request names: its body's, else its query's.
func namespaceOf(r *http.Request, body string) string {
	return cmp.Or(body, r.URL.Query().Get("namespace"))
}

// validNamespace accepts the one namespace there is, or none; anything else gets 400.
func validNamespace(w http.ResponseWriter, ns string) bool {
	if ns == "" || ns == api.Namespace {
		return true
	}
	http.Error(w, "namespace not valid", http.StatusBadRequest)
	return false
}

// bodyNeed says whether a route's JSON body may be left out: delete, scale and restart
// requests may carry everything they need in the URL.
type bodyNeed bool

const (
	bodyRequired bodyNeed = true
	bodyOptional bodyNeed = false
)

// readJSON decodes a request body; a malformed one gets 400 saying what is wrong. Fields
// it does not know are ignored, as newer clients may send more than this version reads.
func readJSON(w http.ResponseWriter, r *http.Request, v any, need bodyNeed) bool {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			http.Error(w, fmt.Sprintf("request body over %d bytes", mbe.Limit), http.StatusRequestEntityTooLarge)
			return false
		}
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return false
	}
	if len(body) == 0 {
		if need == bodyOptional {
			return true
		}
		http.Error(w, "request body: empty, want JSON", http.StatusBadRequest)
		return false
	}
	if err := json.Unmarshal(body, v); err != nil {
		http.Error(w, "request body: invalid JSON: "+err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}

// apiError maps the catalog's and supervisor's errors to status codes.
func apiError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, catalog.ErrInvalid):
		status = http.StatusBadRequest
	case errors.Is(err, catalog.ErrNotFound), errors.Is(err, supervisor.ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, catalog.ErrExists), errors.Is(err, catalog.ErrFileManaged), errors.Is(err, catalog.ErrConflict):
		status = http.StatusConflict
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		// The state directory's file system is full: nothing was changed.
		status = http.StatusInsufficientStorage
	}
	http.Error(w, err.Error(), status)
}
