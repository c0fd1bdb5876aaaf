package main

import (
	"log/slog"
	"maps"
	"os"
	"slices"

	"faasd/config"
	"faasd/program"
	"faasd/supervisor"
)

// A function whose program cannot be found is not refused: it starts, fails with the
// reason, and keeps being retried, because the program is often made after the daemon
// read the file (`faasd up` builds it). What the daemon owes the user is to say so at once,
// and to say why in the function's status rather than only "the replica exited".

// runnable reports whether f's replicas can run its program, looked up as they will be
// started: in f's workdir, with f's env PATH, else the daemon's own, which the supervisor
// hands on to replicas.
func runnable(f *config.Function) error {
	return program.Check(f.Workdir, f.Program(), replicaPATH(f))
}

func replicaPATH(f *config.Function) string {
	return program.SearchPath(f.Env, os.Getenv("PATH"))
}

// warnUnrunnable logs each function of cfg whose program cannot be run, when the daemon
// reads the file (at start, before the services, which may take a while, and on reload).
func warnUnrunnable(cfg *config.Config, log *slog.Logger) {
	for _, name := range slices.Sorted(maps.Keys(cfg.Functions)) {
		f := cfg.Functions[name]
		if err := runnable(f); err != nil {
			log.Warn("function's program cannot be run: the function fails until it can",
				"function", name, "program", f.Program(), "workdir", f.Workdir, "PATH", replicaPATH(f), "err", err)
		}
	}
}

// explainedControl is the supervisor as the API sees it, with the reason a failing
// function fails when its program cannot be run: the supervisor sees a replica exit (a
// classic function's watchdog refuses to start) or a start fail, and says no more than
// that. The program is looked up again on every read of a failing function's status, so
// the reason goes as soon as the program is there.
type explainedControl struct{ *supervisor.Supervisor }

func (c explainedControl) Status(name string) (supervisor.Status, bool) {
	st, ok := c.Supervisor.Status(name)
	if !ok || st.State != "failing" {
		return st, ok
	}
	if route, ok := c.Route(name); ok {
		if err := runnable(route.Spec()); err != nil {
			st.LastError = err.Error()
		}
	}
	return st, true
}
