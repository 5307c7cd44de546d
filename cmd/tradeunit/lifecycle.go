package main

import (
	"context"
	"flag"

	"tradeunit/daemon/lifecycled"
)

var lifecycleCmd = &command{
	name:  "lifecycle",
	usage: "--routes FILE|etcd://HOST:PORT/PREFIX [--every 1m] [--max-orders N] [--max-bytes N] [--max-age D] [--off] [flags]",
	short: "run the lifecycle controller: warm full or old units (after adding a fresh one), move quiet warm units to cold storage",
	long: "One controller of a routing table acts at a time: an etcd lease election under the table's prefix, or an\n" +
		"exclusive lock on FILE.lifecycle.lock beside a table file; others stand by and take over when it dies.\n" +
		"--off stops every action; the unit label lifecycle=off (tradeunit admin unit set N --label lifecycle=off)\n" +
		"takes one unit out of the controller's hands.",
	run: runLifecycle,
}

func runLifecycle(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	m := lifecycled.NewMain()
	if err := parseProgram(e, fs, args, m.Config.Flags, m.ParseFlags); err != nil {
		return err
	}
	if err := m.Run(ctx); err != nil {
		return err
	}
	return closeAfter(m.Wait(ctx), m.Close)
}
