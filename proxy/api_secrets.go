package proxy

import (
	"net/http"

	"github.com/julienschmidt/httprouter"

	"faasd/registry"
)

type secretBody struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
	Value     string `json:"value,omitempty"`
	RawValue  []byte `json:"rawValue,omitempty"` // base64 in JSON
}

func (p *Proxy) listSecrets(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	if !validNamespace(w, r.URL.Query().Get("namespace")) {
		return
	}
	names, err := p.registry.Secrets().Names()
	if err != nil {
		apiError(w, err)
		return
	}
	out := make([]secretBody, 0, len(names))
	for _, n := range names {
		out = append(out, secretBody{Name: n, Namespace: registry.Namespace})
	}
	writeJSON(w, http.StatusOK, out)
}

func (p *Proxy) putSecret(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	var s secretBody
	if !readJSON(w, r, &s, bodyRequired) || !validNamespace(w, firstOf(s.Namespace, r.URL.Query().Get("namespace"))) {
		return
	}
	value := s.RawValue
	if len(value) == 0 {
		value = []byte(s.Value)
	}
	update := r.Method == http.MethodPut
	if err := p.registry.Secrets().Put(s.Name, value, update); err != nil {
		apiError(w, err)
		return
	}
	if !update {
		w.WriteHeader(http.StatusCreated)
		return
	}
	// Running replicas see the new value at once; a redeploy is not needed.
	if err := p.control.RefreshSecret(s.Name); err != nil {
		p.log.Warn("secret updated, but not in every running replica", "secret", s.Name, "err", err)
	}
	w.WriteHeader(http.StatusOK)
}

func (p *Proxy) deleteSecret(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	var s secretBody
	if !readJSON(w, r, &s, bodyOptional) || !validNamespace(w, firstOf(s.Namespace, r.URL.Query().Get("namespace"))) {
		return
	}
	if err := p.registry.Secrets().Delete(s.Name); err != nil {
		apiError(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}
