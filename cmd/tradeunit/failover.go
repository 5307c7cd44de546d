package main

import (
	"context"
	"flag"

	"tradeunit/daemon/failoverd"
)

var failoverControllerCmd = &command{
	name:  "failover-controller",
	usage: "--routes FILE|etcd://HOST:PORT/PREFIX --secrets FILE [--every 500ms] [--fail-after 3] [--health URL] [--min-interval 1m] [--off] [flags]",
	short: "run the failover controller: fail a unit's replicated storage over automatically when its primary dies",
	long: "Every --every it checks each replicated unit's primary and replicas as --admin-user. A primary is declared dead\n" +
		"only when its own check fails --fail-after rounds in a row, no replica's receiver is still connected to it, and\n" +
		"the health checker (--health, if set) sees the unit failing or ejected; then it runs the operator's failover\n" +
		"(tradeunit admin failover), at most once per unit per --min-interval and --max-per-hour in all.\n" +
		"One controller of a routing table acts at a time: an etcd lease election under the table's prefix, or an\n" +
		"exclusive lock on FILE.failover.lock beside a table file. --off stops every failover; the unit label\n" +
		"failover=off (tradeunit admin unit set N --label failover=off) takes one unit out of its hands.",
	run: runFailoverController,
}

func runFailoverController(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	m := failoverd.NewMain()
	if err := parseProgram(e, fs, args, m.Config.Flags, m.ParseFlags); err != nil {
		return err
	}
	if err := m.Run(ctx); err != nil {
		return err
	}
	return closeAfter(m.Wait(ctx), m.Close)
}
