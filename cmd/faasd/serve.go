package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"time"

	"faasd/accounts"
	"faasd/api"
	"faasd/catalog"
	"faasd/cgroup"
	"faasd/config"
	"faasd/filewatch"
	"faasd/gate"
	"faasd/proxy"
	"faasd/scaler"
	"faasd/statedir"
	"faasd/supervisor"
	"faasd/systemd"
	"faasd/webui"
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

// run starts the daemon's parts in dependency order and stops them in the reverse order,
// each by a defer: scaling, then HTTP (in-flight requests finish), then the gate (nothing
// starts any more), the replicas, and last the services they used.
func (c *serveCmd) run(ctx context.Context, env *environment, _ []string) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return fmt.Errorf("%w: --log-level: %w", errUsage, err)
	}
	log := slog.New(systemd.LogHandler(env.stderr, env.getenv, &slog.HandlerOptions{Level: level}))
	cfg, err := config.Load(c.configPath)
	if err != nil {
		return err
	}
	warnUnrunnable(cfg, log)
	sigs := watchSignals(ctx, log)
	defer sigs.close()
	defer log.Info("stopped")

	state := statedir.New(cfg.Gateway.StateDir)
	if err := os.MkdirAll(state.Root, 0o700); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	// Before any process starts: on a delegated v2 hierarchy the daemon moves itself out
	// of its group first, and what a killed predecessor left running is killed.
	cg, err := cgroup.Open(ctx, cgroup.Options{StateDir: state.Root, Logger: log})
	if err != nil {
		return err
	}
	defer func() { stopWithin(context.Background(), cgroupClose, "remove cgroups", cg.Close, log) }()
	ids, err := dynamicAccounts(cfg.Gateway, state)
	if err != nil {
		return err
	}
	svcs := supervisor.NewServices(supervisor.ServiceOptions{Logger: log, Accounts: ids, Cgroups: cg})
	defer func() { stopWithin(sigs.forced, stopLimit, "stop services", svcs.Stop, log) }()
	sup, err := supervisor.New(supervisor.Options{StateDir: state.Root, SecretsDir: state.Secrets(), Logger: log, Accounts: ids, Cgroups: cg})
	if err != nil {
		return err
	}
	defer func() { stopWithin(sigs.budget(), 0, "stop replicas", sup.Stop, log) }()
	// Services start before the functions that depend on them; the gate holds a function
	// back until its services are ready.
	gt := gate.New(runner{sup}, svcs, log)
	defer gt.Close()
	cat, err := catalog.Open(state, cfg.Gateway, gt, log)
	if err != nil {
		return err
	}
	creds, err := basicAuth(cfg.Gateway, state)
	if err != nil {
		return err
	}
	// The scaler reads the proxy's counters and the proxy serves the scaler's history:
	// the proxy is handed to the scaler's source once both exist, before the scaler runs.
	load := &loadSource{}
	sc := scaler.New(scaleTarget{sup}, load, scaler.Settings{
		Interval:   cfg.Gateway.ScaleInterval,
		DownWindow: cfg.Gateway.ScaleDownWindow,
	}, time.Now, log)
	px := newProxy(cfg.Gateway, creds, cat, sup, sc, containment(cg.Status()), log)
	load.px = px
	ln, err := net.Listen("tcp", cfg.Gateway.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close() // unless Serve took it, which Shutdown closes
	adminLn, err := listenAdmin(cfg.Gateway.AdminListen, px)
	if err != nil {
		return err
	}
	if adminLn != nil {
		defer adminLn.Close()
	}
	ln = px.Listener(ln)
	srv := px.Server()
	// Deferred in this order, the queue stops after HTTP (which pauses it) and before the
	// replicas its running calls need.
	async := serveQueue(cfg, px, sup, srv, log)
	defer async.stop()
	defer drainHTTP(srv, sigs, log)
	px.ReportGauges(proxy.Gauges{Replicas: sup, Rates: sc, Services: svcs})

	services, err := prepareSecrets(cfg, cat.Secrets(), log)
	if err != nil {
		return err
	}
	if err := startServices(sigs.stopping, svcs, services, log); err != nil {
		if sigs.stopping.Err() != nil {
			return nil // stopped by the operator while waiting
		}
		return err
	}
	served := make(chan error, 2)
	go func() { served <- srv.Serve(ln) }()
	if adminLn != nil {
		go func() { served <- srv.Serve(adminLn) }()
		log.Info("the API, UI and metrics are served on the admin port only", "admin_listen", adminLn.Addr().String())
	}
	cat.SetFile(cfg.Path, cfg.Functions)
	async.start()
	defer runInBackground(sc.Run)()
	log.Info("faasd serving", "listen", ln.Addr().String(), "config", cfg.Path, "functions", len(cat.List()), "auth", creds != nil, "version", version)
	if creds != nil {
		log.Info("the API and UI need basic auth", "user", creds.User, "password_file", state.BasicAuthPassword())
	}
	notes := notifyServing(sigs.stopping, log, sup, svcs, cat, ln.Addr().String())
	return serveUntilStopped(cfg, cat, svcs, served, sigs, notes, log)
}

// dynamicAccounts hands out the accounts of their own that functions and services without
// a user get. Only root can run programs as other accounts: for a daemon that is not,
// there is none.
func dynamicAccounts(g config.Gateway, state statedir.Layout) (supervisor.DynamicIDs, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	return accounts.Open(state.Users(), g.UserRange)
}

// basicAuth is what /system and /ui require, when the configuration asks for auth: the
// state directory's user and password, made on first start.
func basicAuth(g config.Gateway, state statedir.Layout) (*proxy.Credentials, error) {
	if !g.Auth {
		return nil, nil
	}
	user, password, err := state.EnsureBasicAuth()
	if err != nil {
		return nil, err
	}
	return &proxy.Credentials{User: user, Password: password}, nil
}

// cgroupClose bounds the removal of the daemon's cgroups once everything has stopped.
const cgroupClose = 10 * time.Second

// containment is what /system/info says of the cgroups.
func containment(st cgroup.Status) *api.Containment {
	return &api.Containment{
		Cgroups: string(st.Mode), Groups: st.Groups, Controllers: st.Controllers,
		LimitsEnforced: st.Limits, Warning: st.Warning,
	}
}

// newProxy builds the gateway's handler over the catalog, the supervisor and the
// autoscaler's history.
func newProxy(g config.Gateway, creds *proxy.Credentials, cat *catalog.Catalog, sup *supervisor.Supervisor, hist proxy.History, contain *api.Containment, log *slog.Logger) *proxy.Proxy {
	return proxy.New(proxy.Options{
		Catalog:      cat,
		Control:      sup,
		History:      hist,
		Credentials:  creds,
		Containment:  contain,
		ReadTimeout:  g.ReadTimeout,
		WriteTimeout: g.WriteTimeout,

		ReadHeaderTimeout: g.ReadHeaderTimeout,
		MaxConnsPerClient: g.MaxConnsPerClient,
		TrustedProxies:    g.TrustedProxies,
		Commit:            commit,
		Backends:          sup,
		Logger:            log,
		MaxBodyBytes:      g.MaxBodyBytes,
		HoldTimeout:       g.ScaleFromZeroTimeout,
		MaxHeld:           g.MaxHeldRequests,
		Version:           version,
		UI:                webui.Handler(),

		SeparateAdmin: g.AdminListen != "",
		OwnNames:      func() config.OwnNames { return config.LocalNames(g) },
	})
}

// drainHTTP stops accepting and lets the requests in flight finish, within httpDrain and
// the stop budget; what is left then is cut.
func drainHTTP(srv *http.Server, sigs *signals, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(sigs.budget(), httpDrain)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("requests still in flight at shutdown", "err", err)
		srv.Close()
	}
}

// startServices starts the file's services and waits until every one is ready, so that
// the functions start against running dependencies. A service that fails to come up ends
// the daemon with its reason; the end of ctx (a stop signal) ends the wait.
func startServices(ctx context.Context, svcs *supervisor.Services, specs map[string]*config.Service, log *slog.Logger) error {
	if len(specs) == 0 {
		return nil
	}
	log.Info("starting services", "services", slices.Sorted(maps.Keys(specs)))
	svcs.Apply(specs)
	return svcs.WaitReady(ctx)
}

// serveUntilStopped reloads the configuration on SIGHUP and when the file changes, until a
// stop signal or a failure of the HTTP server.
func serveUntilStopped(cfg *config.Config, cat *catalog.Catalog, svcs *supervisor.Services, served <-chan error, sigs *signals, notes *notes, log *slog.Logger) error {
	var changes <-chan string
	if w, err := watchConfig(cfg.Path, log); err != nil {
		log.Warn("config file not watched: reload with SIGHUP", "err", err)
	} else {
		defer w.Close()
		changes = w.Changes()
	}
	for {
		select {
		case <-sigs.reload:
			notes.reloading()
			cfg = reload(cfg, cat, svcs, log, "SIGHUP")
			notes.reloaded()
		case <-changes:
			notes.reloading()
			cfg = reload(cfg, cat, svcs, log, "file changed")
			notes.reloaded()
		case err := <-served:
			return fmt.Errorf("serve: %w", err)
		case <-sigs.stopping.Done():
			return nil
		}
	}
}

// watchConfig reports changes of the configuration file once a save has settled.
func watchConfig(path string, log *slog.Logger) (*filewatch.Watcher, error) {
	w, err := filewatch.New(150*time.Millisecond, func(err error) { log.Warn("config watch", "err", err) })
	if err != nil {
		return nil, err
	}
	if err := w.File(path, path); err != nil {
		w.Close()
		return nil, err
	}
	return w, nil
}

// listenAdmin opens the admin port of [gateway] admin_listen, or nothing when it is unset.
// Its clients count against the same cap as on the main port.
func listenAdmin(addr string, px *proxy.Proxy) (net.Listener, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin_listen: %w", err)
	}
	return proxy.AdminListener(px.Listener(ln)), nil
}

// reload applies a changed file. An invalid one is refused: the running config stays, and
// the refusal is logged and recorded in the catalog for the API (/system/info) to report
// until a later reload succeeds.
func reload(cur *config.Config, cat *catalog.Catalog, svcs *supervisor.Services, log *slog.Logger, why string) *config.Config {
	next, err := config.Load(cur.Path)
	if err != nil {
		log.Error("config not reloaded: keeping the running one", "why", why, "err", err)
		cat.RefuseFile(cur.Path, err)
		return cur
	}
	if !next.Gateway.Equal(cur.Gateway) {
		log.Warn("changes to [gateway] take effect after a restart", "why", why)
		next.Gateway = cur.Gateway
	}
	services, err := prepareSecrets(next, cat.Secrets(), log)
	if err != nil {
		log.Error("config not reloaded: keeping the running one", "why", why, "err", err)
		return cur
	}
	log.Info("config reloaded", "why", why, "functions", len(next.Functions), "services", len(next.Services))
	// New services start first; the gate lets their functions through once they are ready.
	svcs.Apply(services)
	cat.SetFile(next.Path, next.Functions)
	warnUnrunnable(next, log)
	return next
}

// runInBackground runs fn until the returned function cancels it and waits for it.
func runInBackground(fn func(context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}
