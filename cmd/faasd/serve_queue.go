package main

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"faasd/config"
	"faasd/proxy"
	"faasd/queue"
	"faasd/statedir"
	"faasd/supervisor"
)

// queueStop bounds how long a stopping daemon waits for asynchronous calls that are
// running; those cut short run again after the restart.
const queueStop = 10 * time.Second

// asyncQueue is the queue of asynchronous calls as the daemon runs it; its zero value
// ([queue] enabled = false) does nothing.
type asyncQueue struct{ q *queue.Queue }

// serveQueue builds the queue, adds its routes and metrics to the proxy, and stops taking
// calls as soon as the server starts shutting down, before the replicas go.
func serveQueue(cfg *config.Config, px *proxy.Proxy, sup *supervisor.Supervisor, srv *http.Server, log *slog.Logger) asyncQueue {
	if !cfg.Queue.Enabled {
		return asyncQueue{}
	}
	q := queue.New(queue.Options{
		Config:    cfg.Queue,
		Dir:       statedir.New(cfg.Gateway.StateDir).Queue(),
		Invoker:   px,
		Functions: queueFunctions{sup},
		Metrics:   px.Metrics(),
		Logger:    log,
	})
	px.ServeAsync(q)
	px.Metrics().RegisterMetricsWriter(q.WriteMetrics)
	srv.RegisterOnShutdown(q.Pause)
	return asyncQueue{q}
}

// start runs the calls stored before a restart; the functions they call must be known.
func (a asyncQueue) start() {
	if a.q != nil {
		a.q.Start()
	}
}

func (a asyncQueue) stop() {
	if a.q == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), queueStop)
	defer cancel()
	a.q.Close(ctx)
}

// queueFunctions tells the queue each function's limit of asynchronous calls at once.
type queueFunctions struct{ sup *supervisor.Supervisor }

func (f queueFunctions) MaxInflight(name string) (int, bool) {
	route, ok := f.sup.Route(name)
	if !ok {
		return 0, false
	}
	return route.Spec().MaxInflight, true
}
