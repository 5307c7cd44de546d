package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"tradeunit/orderno"
)

var (
	decodeCmd = &command{
		name:  "decode",
		usage: "ORDER_NO",
		short: "print the fields of an order number (version, unit, creation time, sequence)",
		run:   runDecode,
	}
	adminDecodeCmd = &command{name: "decode", usage: decodeCmd.usage, short: decodeCmd.short, run: runDecode}
)

func runDecode(_ context.Context, e *env, fs *flag.FlagSet, args []string) error {
	if err := parse(e, fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErrorf("want one order number, got %d arguments", fs.NArg())
	}
	n, err := orderno.Parse(fs.Arg(0))
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "order_no  %s\nversion   %d\nunit      %d\ntime      %s (%d)\nsequence  %d\n",
		n.String(), n.Version, n.Unit, n.Time.UTC().Format(time.RFC3339), n.Time.Unix(), n.Seq)
	return nil
}
