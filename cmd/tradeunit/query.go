package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
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
		bar := newProgressBar(e.stderr)
		start := time.Now()
		err = query.Rebuild(ctx, s, units, *batch, bar.show)
		bar.done()
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "query store rebuilt from %d units in %v\n", len(units), time.Since(start).Round(time.Millisecond))
		return nil
	})
}

// progressBar draws a rebuild's progress: redrawn in place on a terminal,
// a plain line every two seconds otherwise.
type progressBar struct {
	w        io.Writer
	terminal bool
	start    time.Time
	last     time.Time
	p        query.RebuildProgress
}

func newProgressBar(w io.Writer) *progressBar {
	b := &progressBar{w: w, start: time.Now()}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			b.terminal = true
		}
	}
	return b
}

func (b *progressBar) show(p query.RebuildProgress) {
	b.p = p
	now := time.Now()
	every := 2 * time.Second
	if b.terminal {
		every = 100 * time.Millisecond
	}
	if now.Sub(b.last) < every {
		return
	}
	b.last = now
	b.draw(now)
}

func (b *progressBar) draw(now time.Time) {
	p := b.p
	share := 1.0
	if p.Total > 0 {
		share = min(float64(p.Orders)/float64(p.Total), 1)
	}
	elapsed := now.Sub(b.start).Seconds()
	rate := float64(p.Orders) / max(elapsed, 1e-3)
	eta := "-"
	if rate > 0 && p.Total > p.Orders {
		eta = (time.Duration(float64(p.Total-p.Orders)/rate) * time.Second).Round(time.Second).String()
	}
	line := fmt.Sprintf("unit %d  %d/%d orders %d refunds  %.0f orders/s  ETA %s", p.Unit, p.Orders, p.Total, p.Refunds, rate, eta)
	if b.terminal {
		const width = 30
		filled := int(share * width)
		fmt.Fprintf(b.w, "\r[%s%s] %3.0f%% %s", strings.Repeat("#", filled), strings.Repeat(" ", width-filled), share*100, line)
		return
	}
	fmt.Fprintf(b.w, "rebuild: %3.0f%% %s\n", share*100, line)
}

func (b *progressBar) done() {
	b.draw(time.Now())
	if b.terminal {
		fmt.Fprintln(b.w)
	}
}
