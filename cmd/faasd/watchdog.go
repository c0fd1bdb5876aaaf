package main

import (
	"context"
	"flag"
	"os/signal"
	"syscall"

	"faasd/watchdog"
)

type watchdogCmd struct{}

func (*watchdogCmd) flags(*flag.FlagSet) {}

func (*watchdogCmd) run(ctx context.Context, env *environment, _ []string) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return watchdog.Run(ctx, env.getenv, env.stderr)
}
