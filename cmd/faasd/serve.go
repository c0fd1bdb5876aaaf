package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"faasd/api"
	"faasd/catalog"
	"faasd/config"
	"faasd/proxy"
	"faasd/scaler"
	"faasd/supervisor"
	"faasd/webui"
)

// Bounds on a graceful stop: in-flight requests get httpDrain to finish, then replicas
// are stopped (each drains, gets SIGTERM, then SIGKILL after its grace) within stopLimit.
const (
	httpDrain = 30 * time.Second
	stopLimit = 60 * time.Second
)

type serveCmd struct {
	configPath string
	logLevel   string
}

func (c *serveCmd) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.configPath, "f", "faasd.toml", "the configuration file")
	fs.StringVar(&c.configPath, "config", "faasd.toml", "the configuration file (same as -f)")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
}

func (c *serveCmd) run(ctx context.Context, env *environment, _ []string) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return fmt.Errorf("%w: --log-level: %w", errUsage, err)
	}
	log := slog.New(slog.NewTextHandler(env.stderr, &slog.HandlerOptions{Level: level}))
	cfg, err := config.Load(c.configPath)
	if err != nil {
		return err
	}
	// Signals are handled here and nowhere else: the first SIGTERM or SIGINT stops
	// gracefully, a second forces; SIGHUP reloads.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)

	if err := os.MkdirAll(cfg.Gateway.StateDir, 0o700); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	secretsDir := filepath.Join(cfg.Gateway.StateDir, "secrets", api.Namespace)
	sup, err := supervisor.New(supervisor.Options{StateDir: cfg.Gateway.StateDir, Logger: log, SecretsDir: secretsDir})
	if err != nil {
		return err
	}
	// Services start before the functions that depend on them and stop after them; the
	// gate holds a function back until its services are ready.
	svcs := supervisor.NewServices(supervisor.ServiceOptions{Logger: log})
	gate := newServiceGate(sup, svcs, log)
	reg, err := catalog.Open(cfg.Gateway.StateDir, cfg.Gateway, gate, log)
	if err != nil {
		sup.Stop(context.Background())
		return err
	}
	var creds *proxy.Credentials
	if cfg.Gateway.Auth {
		c, err := proxy.LoadCredentials(filepath.Join(cfg.Gateway.StateDir, "credentials"))
		if err != nil {
			sup.Stop(context.Background())
			return err
		}
		creds = &c
	}
	px := proxy.New(proxy.Options{
		Catalog:      reg,
		Control:      sup,
		Credentials:  creds,
		ReadTimeout:  cfg.Gateway.ReadTimeout,
		WriteTimeout: cfg.Gateway.WriteTimeout,
		Commit:       commit,
		Backends:     sup,
		Logger:       log,
		MaxBodyBytes: cfg.Gateway.MaxBodyBytes,
		HoldTimeout:  cfg.Gateway.ScaleFromZeroTimeout,
		MaxHeld:      cfg.Gateway.MaxHeldRequests,
		Version:      version,
		UI:           webui.Handler(),

		SeparateAdmin: cfg.Gateway.AdminListen != "",
		OwnNames:      func() config.OwnNames { return config.LocalNames(cfg.Gateway) },
	})
	ln, err := net.Listen("tcp", cfg.Gateway.Listen)
	if err != nil {
		sup.Stop(context.Background())
		return fmt.Errorf("listen: %w", err)
	}
	adminLn, err := listenAdmin(cfg.Gateway.AdminListen)
	if err != nil {
		ln.Close()
		sup.Stop(context.Background())
		return err
	}
	srv := &http.Server{
		Handler:           px,
		ConnContext:       proxy.ConnContext,
		ReadHeaderTimeout: cfg.Gateway.ReadHeaderTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	srv.RegisterOnShutdown(px.Close)
	sc := scaler.New(scaleTarget{sup}, loadSource{px}, scaler.Settings{
		Interval:   cfg.Gateway.ScaleInterval,
		DownWindow: cfg.Gateway.ScaleDownWindow,
	}, time.Now, log)
	px.Metrics().RegisterMetricsWriter(writeFunctionMetrics(sup, px, sc))
	px.Metrics().RegisterMetricsWriter(writeServiceMetrics(svcs))

	if err := startServices(svcs, cfg.Services, sigs, log); err != nil {
		gate.close()
		ln.Close()
		if adminLn != nil {
			adminLn.Close()
		}
		sup.Stop(context.Background())
		if errors.Is(err, errStoppedWhileStarting) {
			return nil
		}
		return err
	}

	served := make(chan error, 2)
	go func() { served <- srv.Serve(ln) }()
	if adminLn != nil {
		go func() { served <- srv.Serve(adminLn) }()
		log.Info("the API, UI and metrics are served on the admin port only", "admin_listen", adminLn.Addr().String())
	}
	reg.SetFile(cfg.Path, cfg.Functions)
	scaleCtx, stopScaling := context.WithCancel(context.Background())
	defer stopScaling()
	go sc.Run(scaleCtx)
	log.Info("faasd serving", "listen", ln.Addr().String(), "config", cfg.Path, "functions", len(reg.List()), "auth", creds != nil, "version", version)
	if creds != nil {
		log.Info("the API and UI need basic auth", "user", creds.User, "password_file", filepath.Join(cfg.Gateway.StateDir, "credentials", "basic-auth-password"))
	}

	changes, stopWatch := watchFile(cfg.Path, log)
	defer stopWatch()
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				cfg = reload(cfg, reg, svcs, log, "SIGHUP")
				continue
			}
			log.Info("stopping", "signal", sig.String())
			stopScaling()
			gate.close()
			return shutdown(srv, sup, svcs, sigs, log)
		case <-changes:
			cfg = reload(cfg, reg, svcs, log, "file changed")
		case err := <-served:
			gate.close()
			sup.Stop(context.Background())
			stopServices(svcs, log)
			return fmt.Errorf("serve: %w", err)
		case <-ctx.Done():
			stopScaling()
			gate.close()
			return shutdown(srv, sup, svcs, sigs, log)
		}
	}
}

// listenAdmin opens the admin port of [gateway] admin_listen, or nothing when it is unset.
func listenAdmin(addr string) (net.Listener, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin_listen: %w", err)
	}
	return proxy.AdminListener(ln), nil
}

// reload applies a changed file; an invalid one is reported and the running config stays.
func reload(cur *config.Config, reg *catalog.Catalog, svcs *supervisor.Services, log *slog.Logger, why string) *config.Config {
	next, err := config.Load(cur.Path)
	if err != nil {
		log.Error("config not reloaded: keeping the running one", "why", why, "err", err)
		return cur
	}
	if !next.Gateway.Equal(cur.Gateway) {
		log.Warn("changes to [gateway] take effect after a restart", "why", why)
		next.Gateway = cur.Gateway
	}
	log.Info("config reloaded", "why", why, "functions", len(next.Functions), "services", len(next.Services))
	// New services start first; the gate lets their functions through once they are ready.
	svcs.Apply(next.Services)
	reg.SetFile(next.Path, next.Functions)
	return next
}

// shutdown stops accepting, lets in-flight requests finish, stops every replica, then the
// services they used. A second signal cuts all of it short.
func shutdown(srv *http.Server, sup *supervisor.Supervisor, svcs *supervisor.Services, sigs <-chan os.Signal, log *slog.Logger) error {
	forced, force := context.WithCancel(context.Background())
	defer force()
	ctx, cancel := context.WithTimeout(forced, stopLimit)
	defer cancel()
	go func() {
		select {
		case sig := <-sigs:
			log.Warn("second signal: stopping now", "signal", sig.String())
			force()
		case <-forced.Done():
		}
	}()
	httpCtx, cancelHTTP := context.WithTimeout(ctx, httpDrain)
	defer cancelHTTP()
	if err := srv.Shutdown(httpCtx); err != nil {
		log.Warn("requests still in flight at shutdown", "err", err)
		srv.Close()
	}
	if err := sup.Stop(ctx); err != nil && !errors.Is(err, context.Canceled) {
		log.Warn("stop replicas", "err", err)
	}
	// Last, once no replica needs them, and with a budget of their own: a database
	// flushes on SIGTERM.
	svcCtx, cancelSvc := context.WithTimeout(forced, stopLimit)
	defer cancelSvc()
	if err := svcs.Stop(svcCtx); err != nil && !errors.Is(err, context.Canceled) {
		log.Warn("stop services", "err", err)
	}
	log.Info("stopped")
	return nil
}

// watchFile reports changes of a file. It watches the directory, because editors and
// config management replace files by renaming over them, which ends a watch on the file.
func watchFile(path string, log *slog.Logger) (<-chan struct{}, func()) {
	out := make(chan struct{}, 1)
	w, err := fsnotify.NewWatcher()
	if err != nil {
		log.Warn("config file not watched: reload with SIGHUP", "err", err)
		return out, func() {}
	}
	if err := w.Add(filepath.Dir(path)); err != nil {
		log.Warn("config file not watched: reload with SIGHUP", "err", err)
		w.Close()
		return out, func() {}
	}
	go func() {
		// Writers often produce several events per save; settle before reloading.
		var settle <-chan time.Time
		for {
			select {
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if filepath.Clean(ev.Name) == path && !ev.Has(fsnotify.Chmod) {
					settle = time.After(150 * time.Millisecond)
				}
			case <-settle:
				settle = nil
				select {
				case out <- struct{}{}:
				default:
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				log.Warn("config watch", "err", err)
			}
		}
	}()
	return out, func() { w.Close() }
}
