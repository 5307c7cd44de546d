package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"text/tabwriter"
	"time"

	"tradeunit/admin"
	"tradeunit/query"
)

var reconcileCmd = &command{
	name:  "reconcile",
	usage: "--date YYYY-MM-DD --store sqlite:PATH|postgres://... [--json]",
	short: "compare one day's merchant totals in the query store with the units' own, and list every difference (exit 1 if any)",
	long: "The day is in China Standard Time, as the bills'. Run it once the query store has caught up past\n" +
		"the day's end: it says so when the store is not complete up to then.",
	run: runReconcile,
}

// errDifferences makes the exit status 1 when reconciliation found any.
var errDifferences = errors.New("reconciliation found differences")

func runReconcile(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	date := fs.String("date", "", "the day, YYYY-MM-DD (required)")
	target := fs.String("store", "", "the query store: sqlite:PATH or postgres://USER@HOST:PORT/DB (required)")
	asJSON := fs.Bool("json", false, "print the reconciliation as JSON")
	return adminRead(ctx, e, fs, args, func(a *admin.Admin) error {
		day, err := query.ParseDate(*date)
		if err != nil {
			return usageErrorf("--date: %v", err)
		}
		if *target == "" {
			return usageErrorf("--store is required")
		}
		cfg := query.DefaultConfig()
		s, err := query.Open(ctx, *target, cfg)
		if err != nil {
			return err
		}
		defer s.Close()
		from, to := day.Start(cfg.Zone), day.End(cfg.Zone)
		asOf, err := s.AsOf(ctx)
		if err != nil {
			return err
		}
		r, err := a.Reconcile(ctx, s, from, to)
		if err != nil {
			return err
		}
		complete := !asOf.Before(to)
		if *asJSON {
			enc := json.NewEncoder(e.stdout)
			enc.SetIndent("", "  ")
			err = enc.Encode(map[string]any{"date": day.String(), "query_store_as_of": asOf, "complete": complete,
				"units": r.Units, "query_store": r.Store, "differences": r.Differences})
		} else {
			printReconciliation(e, day, asOf, complete, r)
		}
		if err == nil && len(r.Differences) > 0 {
			err = errDifferences
		}
		return err
	})
}

func printReconciliation(e *env, day query.Date, asOf time.Time, complete bool, r *admin.Reconciliation) {
	if !complete {
		fmt.Fprintf(e.stdout, "warning: the query store is complete only up to %s, before the day's end: differences may be its lag\n",
			asOf.Format(time.RFC3339))
	}
	fmt.Fprintf(e.stdout, "%s: %d merchants in the units, %d in the query store, %d differences\n", day, len(r.Units), len(r.Store), len(r.Differences))
	if len(r.Differences) == 0 {
		return
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MCHID\tCURRENCY\tFIELD\tUNITS\tQUERY STORE")
	for _, d := range r.Differences {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\n", d.Mchid, d.Currency, d.Field, d.Units, d.Store)
	}
	tw.Flush()
}
