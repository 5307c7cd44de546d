package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"tradeunit/admin"
	"tradeunit/daemon/queryd"
	"tradeunit/query"
)

var queryCmd = &command{
	name:  "query",
	usage: "apply|rebuild [flags]",
	short: "the non-real-time query store: keep it fed from the event bus, or rebuild it from the units",
	sub:   []*command{queryApplyCmd, queryRebuildCmd},
}

var queryApplyCmd = &command{
	name:  "apply",
	usage: "--store sqlite:PATH|postgres://USER@HOST:PORT/DB [--nats-url URL] [--metrics ADDR] [flags]",
	short: "apply every order event of the bus to the query store (a durable consumer: it resumes where it stopped)",
	run:   runQueryApply,
}

var queryRebuildCmd = &command{
	name:  "rebuild",
	usage: "--store sqlite:PATH|postgres://... [--routes FILE|etcd://...] [--keep] [--batch N]",
	short: "empty the query store and fill it again from every unit's own orders and refunds, with a progress bar",
	long: "The consumer (tradeunit query apply) may keep running: rows are applied by version, so a\n" +
		"rebuilt row never takes back a newer change the consumer applied meanwhile.",
	run: runQueryRebuild,
}

func runQueryApply(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	m := queryd.NewMain()
	if err := parseProgram(e, fs, args, m.Config.Flags, m.ParseFlags); err != nil {
		return err
	}
	if err := m.Run(ctx); err != nil {
		return err
	}
	return closeAfter(m.Wait(ctx), m.Close)
}

func runQueryRebuild(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	target := fs.String("store", "", "the query store: sqlite:PATH or postgres://USER@HOST:PORT/DB (required)")
	keep := fs.Bool("keep", false, "do not empty the store first (fill in what is missing)")
	batch := fs.Int("batch", 1000, "rows read from a unit and applied at once")
	return adminRead(ctx, e, fs, args, func(a *admin.Admin) error {
		if *target == "" {
			return usageErrorf("--store is required")
		}
		s, err := query.Open(ctx, *target, query.DefaultConfig())
		if err != nil {
			return err
		}
		defer s.Close()
		units, closeUnits, err := a.UnitStores(ctx)
		if err != nil {
			return err
		}
		defer closeUnits()
		if !*keep {
			if err := s.Reset(ctx); err != nil {
				return err
			}
		}
		bar := newProgressBar(e.stderr, "rebuild")
		start := time.Now()
		err = query.Rebuild(ctx, s, units, *batch, showRebuild(bar))
		bar.done()
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "query store rebuilt from %d units in %v\n", len(units), time.Since(start).Round(time.Millisecond))
		return nil
	})
}

// showRebuild draws a rebuild's progress on b.
func showRebuild(b *progressBar) func(query.RebuildProgress) {
	return func(p query.RebuildProgress) {
		share := 1.0
		if p.Total > 0 {
			share = float64(p.Orders) / float64(p.Total)
		}
		rate, eta := b.rateAndETA(p.Orders, p.Total)
		b.show(share, fmt.Sprintf("unit %d  %d/%d orders %d refunds  %.0f orders/s  ETA %s", p.Unit, p.Orders, p.Total, p.Refunds, rate, eta))
	}
}
