package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/julienschmidt/httprouter"

	"faasd/api"
	"faasd/queue"
)

// Queue is what the asynchronous routes need of the queue.
type Queue interface {
	Enqueue(ctx context.Context, c *queue.Call) error
	MaxBodyBytes() int64
	CheckCallback(url string) error
	Info(ctx context.Context) api.QueueInfo
	Failures(ctx context.Context, fn string) ([]api.QueueFailure, error)
}

// ServeAsync adds the asynchronous routes: /async-function/NAME[/path] for every method a
// function may be called with, open like /function/*, and the failure listing under
// /system, behind its auth. Call it before serving.
func (p *Proxy) ServeAsync(q Queue) {
	p.queue = q
	enqueue := func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) { p.enqueue(q, w, r, ps) }
	for _, m := range invocationMethods {
		p.router.Handle(m, "/async-function/:name", enqueue)
		p.router.Handle(m, "/async-function/:name/*path", enqueue)
	}
	if p.catalog != nil {
		p.router.Handler(http.MethodGet, "/system/queue/failed", p.requireAuth(p.apiDeadlines(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p.queueFailures(q, w, r)
		}))))
	}
}

// Invoke runs a request through the synchronous invocation path: holding it while the
// function wakes, balancing, the function's timeout and metrics. name is the function,
// path the upstream path (escaped). The queue's workers call functions through it.
func (p *Proxy) Invoke(w http.ResponseWriter, r *http.Request, name, path string) {
	route, ok := p.backends.Route(name)
	if !ok {
		setCallHeaders(w.Header(), r)
		http.Error(w, "error finding function "+name+": no such function", http.StatusNotFound)
		return
	}
	p.invoke(w, r, route, "/function/"+name, path)
}

// enqueue stores a call and answers 202 with its X-Call-Id once it is stored: a crash
// after that loses nothing.
func (p *Proxy) enqueue(q Queue, w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	raw, _, rest, ok := callPath(r.URL.EscapedPath(), "async-function")
	if !ok {
		http.Error(w, "404 page not found: "+r.URL.Path, http.StatusNotFound)
		return
	}
	name := functionName(raw)
	callID := r.Header.Get("X-Call-Id")
	if callID == "" {
		callID = newCallID()
	}
	w.Header().Set("X-Call-Id", callID)
	if _, found := p.backends.Route(name); !found {
		http.Error(w, "error finding function "+raw+": no such function", http.StatusNotFound)
		return
	}
	callback := r.Header.Get("X-Callback-Url")
	if callback != "" {
		if err := q.CheckCallback(callback); err != nil {
			http.Error(w, fmt.Sprintf("X-Callback-Url %q: %v", callback, err), http.StatusBadRequest)
			return
		}
	}
	// The request is stored whole before the answer, so it is bounded by the gateway's
	// timeouts like an API call, not by the function's.
	rc := http.NewResponseController(w)
	now := time.Now()
	_ = rc.SetReadDeadline(now.Add(p.apiRead))
	_ = rc.SetWriteDeadline(now.Add(p.apiWrite))
	defer rc.SetWriteDeadline(time.Time{})
	limit := q.MaxBodyBytes()
	if r.ContentLength > limit {
		http.Error(w, fmt.Sprintf("request body of %d bytes is over the queue's limit of %d", r.ContentLength, limit), http.StatusRequestEntityTooLarge)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			http.Error(w, fmt.Sprintf("request body is over the queue's limit of %d bytes", limit), http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "reading the request body: "+err.Error(), http.StatusBadRequest)
		return
	}
	header := r.Header.Clone()
	header.Set("X-Call-Id", callID)
	err = q.Enqueue(r.Context(), &queue.Call{
		ID: callID, Function: name, Method: r.Method, Path: rest, Query: r.URL.RawQuery,
		Header: header, Host: r.Host, RemoteAddr: r.RemoteAddr, CallbackURL: callback,
		EnqueuedAt: now, Body: body,
	})
	switch {
	case err == nil:
		w.WriteHeader(http.StatusAccepted)
	case errors.Is(err, queue.ErrFull):
		w.Header().Set("Retry-After", "5")
		http.Error(w, "the queue of asynchronous calls is full: try again later", http.StatusTooManyRequests)
	case errors.Is(err, queue.ErrTooLarge):
		http.Error(w, "request is too large for the queue", http.StatusRequestEntityTooLarge)
	default:
		p.log.Error("asynchronous call not stored", "function", name, "err", err)
		http.Error(w, "asynchronous call not stored: "+err.Error(), http.StatusServiceUnavailable)
	}
}

func (p *Proxy) queueFailures(q Queue, w http.ResponseWriter, r *http.Request) {
	fn := r.URL.Query().Get("function")
	failures, err := q.Failures(r.Context(), fn)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	writeJSON(w, http.StatusOK, failures)
}
