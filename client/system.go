package client

import (
	"context"
	"net/http"
	"net/url"

	"faasd/api"
)

// The /system routes, one method each. Names are escaped into paths; a 404 comes back as a
// *StatusError, for the caller to name what was not found.

// Info is GET /system/info: who implements the gateway, in which version.
func (g *Gateway) Info(ctx context.Context) (api.Info, error) {
	var info api.Info
	_, err := g.Call(ctx, http.MethodGet, "/system/info", nil, &info)
	return info, err
}

// Functions is GET /system/functions: every function and its state.
func (g *Gateway) Functions(ctx context.Context) ([]api.FunctionStatus, error) {
	var list []api.FunctionStatus
	_, err := g.Call(ctx, http.MethodGet, "/system/functions", nil, &list)
	return list, err
}

// Function is GET /system/function/NAME.
func (g *Gateway) Function(ctx context.Context, name string) (api.FunctionStatus, error) {
	var st api.FunctionStatus
	_, err := g.Call(ctx, http.MethodGet, FunctionPath(name), nil, &st)
	return st, err
}

// FunctionPath is the route of one function's status.
func FunctionPath(name string) string { return "/system/function/" + url.PathEscape(name) }

// Deploy is POST /system/functions: a new function (409 if the name is taken).
func (g *Gateway) Deploy(ctx context.Context, d api.Deployment) error {
	_, err := g.Call(ctx, http.MethodPost, "/system/functions", d, nil, http.StatusOK, http.StatusAccepted)
	return err
}

// Update is PUT /system/functions: a new spec for a deployed function, whose replicas roll
// over (404 if there is none).
func (g *Gateway) Update(ctx context.Context, d api.Deployment) error {
	_, err := g.Call(ctx, http.MethodPut, "/system/functions", d, nil, http.StatusOK, http.StatusAccepted)
	return err
}

// Delete is DELETE /system/functions: the function's replicas drain and stop.
func (g *Gateway) Delete(ctx context.Context, name string) error {
	body := map[string]string{"functionName": name}
	_, err := g.Call(ctx, http.MethodDelete, "/system/functions", body, nil, http.StatusOK, http.StatusAccepted)
	return err
}

// Scale is POST /system/scale-function/NAME: the desired replica count, at once.
func (g *Gateway) Scale(ctx context.Context, name string, replicas int) error {
	body := map[string]any{"serviceName": name, "replicas": replicas}
	_, err := g.Call(ctx, http.MethodPost, "/system/scale-function/"+url.PathEscape(name), body, nil, http.StatusOK, http.StatusAccepted)
	return err
}

// Restart is faasd's POST /system/restart-function/NAME: the replicas roll over, recording
// revision (empty: a restart every time). It reports whether they do: false when the
// function already runs that revision.
func (g *Gateway) Restart(ctx context.Context, name, revision string) (bool, error) {
	body := map[string]string{"revision": revision}
	status, err := g.Call(ctx, http.MethodPost, "/system/restart-function/"+url.PathEscape(name), body, nil, http.StatusOK, http.StatusAccepted)
	return status == http.StatusAccepted, err
}

// Secrets is GET /system/secrets: the names, never the values.
func (g *Gateway) Secrets(ctx context.Context) ([]api.Secret, error) {
	var secrets []api.Secret
	_, err := g.Call(ctx, http.MethodGet, "/system/secrets", nil, &secrets, http.StatusOK, http.StatusAccepted)
	return secrets, err
}

// CreateSecret is POST /system/secrets (409 if it exists).
func (g *Gateway) CreateSecret(ctx context.Context, name string, value []byte) error {
	body := api.Secret{Name: name, RawValue: value}
	_, err := g.Call(ctx, http.MethodPost, "/system/secrets", body, nil, http.StatusOK, http.StatusCreated, http.StatusAccepted)
	return err
}

// UpdateSecret is PUT /system/secrets (404 if there is none); running replicas see the
// new value at once.
func (g *Gateway) UpdateSecret(ctx context.Context, name string, value []byte) error {
	body := api.Secret{Name: name, RawValue: value}
	_, err := g.Call(ctx, http.MethodPut, "/system/secrets", body, nil, http.StatusOK, http.StatusAccepted)
	return err
}

// DeleteSecret is DELETE /system/secrets.
func (g *Gateway) DeleteSecret(ctx context.Context, name string) error {
	_, err := g.Call(ctx, http.MethodDelete, "/system/secrets", api.Secret{Name: name}, nil, http.StatusOK, http.StatusAccepted)
	return err
}
