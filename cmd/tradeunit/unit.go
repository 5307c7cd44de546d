package main

import (
	"context"
	"flag"

	"tradeunit/daemon/unitd"
)

var unitCmd = &command{
	name:  "unit",
	usage: "--unit N (--db DSN | --routes FILE|etcd://HOST:PORT/PREFIX) [--secrets FILE] [--listen ADDR] [--metrics ADDR] [flags]",
	short: "run a logic-service replica of unit N over its storage: one DSN, or the primary and replicas the storage topology names",
	run:   runUnit,
}

func runUnit(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	m := unitd.NewMain()
	if err := parseProgram(e, fs, args, m.Config.Flags, m.ParseFlags); err != nil {
		return err
	}
	if err := m.Run(ctx); err != nil {
		return err
	}
	return closeAfter(m.Wait(ctx), m.Close)
}
