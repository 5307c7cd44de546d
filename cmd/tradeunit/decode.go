package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"tradeunit/orderno"
)

var decodeCmd = &command{
	name:  "decode",
	usage: "ORDER_NO",
	short: "print the fields of an order number (version, unit, creation time, sequence)",
}

func init() { decodeCmd.run = runDecode }

func runDecode(_ context.Context, args []string, stdout io.Writer) error {
	fs := newFlags(decodeCmd)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return fmt.Errorf("want one order number, got %d arguments", fs.NArg())
	}
	n, err := orderno.Parse(fs.Arg(0))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "order_no  %s\nversion   %d\nunit      %d\ntime      %s (%d)\nsequence  %d\n",
		n.String(), n.Version, n.Unit, n.Time.UTC().Format(time.RFC3339), n.Time.Unix(), n.Seq)
	return nil
}
