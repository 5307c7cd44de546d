package main

import (
	"context"
	"flag"

	"tradeunit/daemon/relayd"
)

var relayCmd = &command{
	name:  "relay",
	usage: "--unit N (--db DSN | --routes FILE|etcd://HOST:PORT/PREFIX) [--nats-url URL] [--metrics ADDR] [flags]",
	short: "publish unit N's order events to the event bus (NATS JetStream): every committed event at least once, none skipped",
	long: "Several relays may run for a unit: a lease in the unit's storage lets one publish, and another\n" +
		"takes over within --lease-ttl when it dies. The cursor lives in the unit's storage beside the lease.",
	run: runRelay,
}

func runRelay(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	m := relayd.NewMain()
	if err := parseProgram(e, fs, args, m.Config.Flags, m.ParseFlags); err != nil {
		return err
	}
	if err := m.Run(ctx); err != nil {
		return err
	}
	return closeAfter(m.Wait(ctx), m.Close)
}
