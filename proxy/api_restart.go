package proxy

import (
	"net/http"

	"github.com/julienschmidt/httprouter"
)

// restarter is what the restart route needs of the catalog. It is optional, so that
// catalogs that cannot restart (test doubles) need not pretend to.
type restarter interface {
	Restart(name, revision string) (bool, error)
}

// restartFunction rolls a function's replicas over, for functions of the configuration
// file as for deployed ones: POST /system/restart-function/NAME with an optional body
// {"revision": "..."}. 202 when replicas roll over, 200 when the revision is already the
// function's (nothing to do), 404 for an unknown function. faasd's extension; `faasd up`
// sends it after rebuilding a function the daemon serves from its own file.
func (p *Proxy) restartFunction(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	var req struct {
		Revision  string `json:"revision"`
		Namespace string `json:"namespace"`
	}
	if !readJSON(w, r, &req, bodyOptional) || !validNamespace(w, namespaceOf(r, req.Namespace)) {
		return
	}
	rs, ok := p.catalog.(restarter)
	if !ok {
		http.Error(w, "restart: not supported by this catalog", http.StatusNotImplemented)
		return
	}
	changed, err := rs.Restart(ps.ByName("name"), req.Revision)
	if err != nil {
		apiError(w, err)
		return
	}
	if !changed {
		w.WriteHeader(http.StatusOK)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}
