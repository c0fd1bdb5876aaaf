package proxy

import (
	"net/http"

	"github.com/julienschmidt/httprouter"

	"faasd/api"
)

func (p *Proxy) listSecrets(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	if !validNamespace(w, r.URL.Query().Get("namespace")) {
		return
	}
	names, err := p.catalog.Secrets().Names()
	if err != nil {
		apiError(w, err)
		return
	}
	out := make([]api.Secret, 0, len(names))
	for _, n := range names {
		out = append(out, api.Secret{Name: n, Namespace: api.Namespace})
	}
	writeJSON(w, http.StatusOK, out)
}

func (p *Proxy) putSecret(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	var s api.Secret
	if !readJSON(w, r, &s, bodyRequired) || !validNamespace(w, namespaceOf(r, s.Namespace)) {
		return
	}
	value := s.RawValue
	if len(value) == 0 {
		value = []byte(s.Value)
	}
	update := r.Method == http.MethodPut
	if err := p.catalog.Secrets().Put(s.Name, value, update); err != nil {
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
	var s api.Secret
	if !readJSON(w, r, &s, bodyOptional) || !validNamespace(w, namespaceOf(r, s.Namespace)) {
		return
	}
	if err := p.catalog.DeleteSecret(s.Name); err != nil {
		apiError(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}
