package main

import (
	"context"
	"flag"

	"tradeunit/daemon/directoryd"
)

var directoryCmd = &command{
	name:  "directory",
	usage: "--shard N --routes FILE|etcd://HOST:PORT/PREFIX [--db DSN] [--secrets FILE] [--listen ADDR] [--metrics ADDR] [flags]",
	short: "run a service replica of merchant-key directory shard N over its storage, with its reconciler",
	long: "The directory holds, for each merchant's out_trade_no and out_refund_no, where its one record is: every create\n" +
		"and every lookup by a merchant's number goes through the key's shard (see the README).",
	run: runDirectory,
}

func runDirectory(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	m := directoryd.NewMain()
	if err := parseProgram(e, fs, args, m.Config.Flags, m.ParseFlags); err != nil {
		return err
	}
	if err := m.Run(ctx); err != nil {
		return err
	}
	return closeAfter(m.Wait(ctx), m.Close)
}
