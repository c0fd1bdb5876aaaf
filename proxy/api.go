package proxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"runtime"
	"time"

	"github.com/julienschmidt/httprouter"

	"faasd/registry"
	"faasd/supervisor"
)

// Registry is what the API needs of the function registry.
type Registry interface {
	List() []registry.Function
	Get(name string) (registry.Function, bool)
	Create(registry.Deployment) error
	Update(registry.Deployment) error
	Delete(name string) error
	Secrets() *registry.Secrets
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
		r.Handler(method, path, p.requireAuth(p.apiDeadlines(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			h(w, req, httprouter.ParamsFromContext(req.Context()))
		}))))
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
}

// apiDeadlines bounds an API request by the gateway's read and write timeouts. The server
// has none of its own, so that function calls are bound by their function's timeout only.
func (p *Proxy) apiDeadlines(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		now := time.Now()
		_ = rc.SetReadDeadline(now.Add(p.apiRead))
		if !isFollow(r) {
			_ = rc.SetWriteDeadline(now.Add(p.apiWrite))
			defer rc.SetWriteDeadline(time.Time{})
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxAPIBody)
		h.ServeHTTP(w, r)
	})
}

func (p *Proxy) info(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
	v := map[string]string{"release": p.version, "sha": p.commit}
	writeJSON(w, http.StatusOK, map[string]any{
		"provider": map[string]any{"provider": ProviderName, "orchestration": "processes", "version": v},
		"version":  v,
		"arch":     runtime.GOARCH,
	})
}

// FunctionStatus is OpenFaaS's FunctionStatus plus faasd's own fields: what the API
// answers for a function, and what the CLI reads.
type FunctionStatus struct {
	Name                   string              `json:"name"`
	Image                  string              `json:"image"`
	Namespace              string              `json:"namespace,omitempty"`
	EnvProcess             string              `json:"envProcess,omitempty"`
	EnvVars                map[string]string   `json:"envVars,omitempty"`
	Constraints            []string            `json:"constraints,omitempty"`
	Secrets                []string            `json:"secrets,omitempty"`
	Labels                 map[string]string   `json:"labels"`      // always an object
	Annotations            map[string]string   `json:"annotations"` // always an object
	Limits                 *registry.Resources `json:"limits,omitempty"`
	Requests               *registry.Resources `json:"requests,omitempty"`
	ReadOnlyRootFilesystem bool                `json:"readOnlyRootFilesystem,omitempty"`
	InvocationCount        float64             `json:"invocationCount,omitempty"`
	Replicas               uint64              `json:"replicas,omitempty"`
	AvailableReplicas      uint64              `json:"availableReplicas,omitempty"`
	CreatedAt              time.Time           `json:"createdAt"`

	Command   []string `json:"command,omitempty"`
	Workdir   string   `json:"workdir,omitempty"`
	User      string   `json:"user,omitempty"`
	Source    string   `json:"source"`
	Status    string   `json:"status,omitempty"`
	Starting  int      `json:"startingReplicas,omitempty"`
	Failures  int      `json:"failures,omitempty"`
	LastError string   `json:"lastError,omitempty"`
}

func (p *Proxy) status(fn registry.Function) FunctionStatus {
	d := fn.Deployment
	labels := map[string]string{}
	maps.Copy(labels, d.Labels)
	labels["faas_function"] = fn.Spec.Name
	annotations := map[string]string{}
	maps.Copy(annotations, d.Annotations)
	st := FunctionStatus{
		Name: fn.Spec.Name, Image: d.Image, Namespace: registry.Namespace, EnvProcess: d.EnvProcess,
		EnvVars: d.EnvVars, Constraints: d.Constraints, Secrets: d.Secrets, Labels: labels,
		Annotations: annotations, Limits: d.Limits, Requests: d.Requests,
		ReadOnlyRootFilesystem: d.ReadOnlyRootFilesystem, CreatedAt: fn.CreatedAt,
		InvocationCount: float64(p.stats.get(fn.Spec.Name).completed.Load()),
		Command:         d.Command, Workdir: d.Workdir, User: d.User, Source: fn.Source,
	}
	if len(st.EnvVars) == 0 {
		st.EnvVars = nil
	}
	if s, ok := p.control.Status(fn.Spec.Name); ok {
		st.Replicas = uint64(s.Desired)
		st.AvailableReplicas = uint64(s.Ready)
		st.Status, st.Starting, st.Failures, st.LastError = s.State, s.Starting, s.Failures, s.LastError
	}
	return st
}

func (p *Proxy) listFunctions(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	if !validNamespace(w, r.URL.Query().Get("namespace")) {
		return
	}
	fns := p.registry.List()
	out := make([]FunctionStatus, 0, len(fns))
	for _, fn := range fns {
		out = append(out, p.status(fn))
	}
	writeJSON(w, http.StatusOK, out)
}

func (p *Proxy) getFunction(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	if !validNamespace(w, r.URL.Query().Get("namespace")) {
		return
	}
	fn, ok := p.registry.Get(ps.ByName("name"))
	if !ok {
		http.Error(w, "no such function: "+ps.ByName("name"), http.StatusNotFound)
		return
	}
	writeJSON(w, http.StatusOK, p.status(fn))
}

func (p *Proxy) deployFunction(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	var d registry.Deployment
	if !readJSON(w, r, &d, bodyRequired) || !validNamespace(w, d.Namespace) {
		return
	}
	var err error
	if r.Method == http.MethodPost {
		err = p.registry.Create(d)
	} else {
		err = p.registry.Update(d)
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
	if !readJSON(w, r, &req, bodyOptional) || !validNamespace(w, firstOf(req.Namespace, r.URL.Query().Get("namespace"))) {
		return
	}
	if req.FunctionName == "" {
		http.Error(w, "functionName is required", http.StatusBadRequest)
		return
	}
	if err := p.registry.Delete(req.FunctionName); err != nil {
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
	if !readJSON(w, r, &req, bodyOptional) || !validNamespace(w, firstOf(req.Namespace, r.URL.Query().Get("namespace"))) {
		return
	}
	name := firstOf(ps.ByName("name"), req.ServiceName)
	if _, ok := p.registry.Get(name); !ok {
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
	writeJSON(w, http.StatusOK, []string{registry.Namespace})
}

// validNamespace accepts the one namespace there is, or none; anything else gets 400.
func validNamespace(w http.ResponseWriter, ns string) bool {
	if ns == "" || ns == registry.Namespace {
		return true
	}
	http.Error(w, "namespace not valid", http.StatusBadRequest)
	return false
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
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

// apiError maps the registry's and supervisor's errors to status codes.
func apiError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, registry.ErrInvalid):
		status = http.StatusBadRequest
	case errors.Is(err, registry.ErrNotFound), errors.Is(err, supervisor.ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, registry.ErrExists), errors.Is(err, registry.ErrFileManaged):
		status = http.StatusConflict
	}
	http.Error(w, err.Error(), status)
}
