package proxy

import (
	"log/slog"
	"net/http"
	"time"
)

// serverIdleTimeout closes keep-alive connections that carried nothing for this long.
const serverIdleTimeout = 2 * time.Minute

// Server returns the http.Server that serves p, with the bounds p relies on:
//
//   - a request's head must arrive within ReadHeaderTimeout, and the whole request
//     within ReadTimeout, its answer be written within WriteTimeout: so a client that
//     promises a body and never sends it, or never reads what it asked for, holds a
//     connection that long at most, on every route (404s, 401s, /healthz and /metrics
//     read no body, and net/http waits for it before it answers);
//   - function calls replace the last two with their function's timeout (invoke.go),
//     until a protocol switch, after which the stream is the function's; log follows
//     replace them with the life of the client.
//
// Serve it on the listeners Listener returns, so that each client address has its cap.
func (p *Proxy) Server() *http.Server {
	srv := &http.Server{
		Handler:           p,
		ConnContext:       ConnContext,
		ReadHeaderTimeout: p.headerTimeout,
		ReadTimeout:       p.apiRead,
		WriteTimeout:      p.apiWrite,
		IdleTimeout:       serverIdleTimeout,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
	}
	srv.RegisterOnShutdown(p.Close)
	return srv
}
