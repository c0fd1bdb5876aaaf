package main

import (
	"log/slog"
	"maps"
	"os"
	"slices"

	"faasd/config"
	"faasd/program"
)

// A function whose program cannot be found is not refused: it starts, fails with the
// reason (the supervisor resolves programs with package program too, and a classic
// watchdog says why on stderr), and keeps being retried, because the program is often
// made after the daemon read the file (`faasd up` builds it). What the daemon owes the
// user besides is to say so at once, when it reads the file.

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
