package main

import (
	"context"
	"flag"
	"fmt"

	"tradeunit/daemon/healthd"
)

var healthCmd = &command{
	name:  "health",
	usage: "--routes FILE|etcd://HOST:PORT/PREFIX [--listen ADDR] [--interval 1s] [--max-eject-share 0.5] [flags]",
	short: "run the health checker: probe every unit with real orders, eject failing ones safely, serve GET /v1/units and /metrics",
	run:   runHealth,
}

func runHealth(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	m := healthd.NewMain()
	if err := parseProgram(e, fs, args, m.Config.Flags, m.ParseFlags); err != nil {
		return err
	}
	if err := m.Run(ctx); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "health checker listening on %s (GET /v1/units, /metrics)\n", m.URL())
	return closeAfter(m.Wait(ctx), m.Close)
}
