package proxy

import (
	"crypto/subtle"
	"net/http"
)

// Credentials are the basic-auth user and password that /system and /ui require; the
// daemon keeps them in its state directory (statedir.Layout.BasicAuth).
type Credentials struct {
	User     string
	Password string
}

// requireAuth guards a handler with basic auth when credentials are set. Both user and
// password are compared in constant time, so timing tells nothing about either.
func (p *Proxy) requireAuth(h http.Handler) http.Handler {
	if p.creds == nil {
		return h
	}
	want := p.creds
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		userOK := subtle.ConstantTimeCompare([]byte(user), []byte(want.User))
		passOK := subtle.ConstantTimeCompare([]byte(pass), []byte(want.Password))
		if !ok || userOK&passOK != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="Restricted"`)
			http.Error(w, "invalid credentials", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}
