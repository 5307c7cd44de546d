package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"tradeunit"
	"tradeunit/admin"
	"tradeunit/daemon"
	"tradeunit/dsn"
	"tradeunit/lifecycle"
	"tradeunit/routing"
)

var unitCoolCmd = &command{
	name:  "cool",
	usage: "--unit N --to DSN [--dry-run] [--retire] [--abort | --undo] [--range-rows 500] [--pause 0] [--max-freeze 1s] [--settle 1s]",
	short: "move a warm unit's data to cold storage: copy live, freeze, copy the rest, verify, switch the storage mapping (--retire: then delete the old data); resumes where a run stopped",
	run:   runUnitCool,
}

func runUnitCool(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	var id tradeunit.UnitID
	daemon.UnitVar(fs, &id, "unit", "the unit to move (required)")
	var to dsn.DSN
	fs.TextVar(&to, "to", to, "the cold storage: sqlite:PATH or mysql:USER@tcp(HOST:PORT)/DB; a move under way resumes without it")
	cfg := lifecycle.DefaultConfig()
	fs.IntVar(&cfg.RangeRows, "range-rows", cfg.RangeRows, "rows per range: the unit of comparison (a checksum each side) and of repair")
	fs.DurationVar(&cfg.Pause, "pause", cfg.Pause, "rest between two ranges of the live copy, so the unit's own traffic is not starved")
	fs.DurationVar(&cfg.MaxFreeze, "max-freeze", cfg.MaxFreeze, "longest the freeze may last until the switch; a final copy that takes longer is given up and the copy resumed live")
	fs.DurationVar(&cfg.Settle, "settle", cfg.Settle, "longest wait after the switch for every logic service to read the copy (updates wait meanwhile; keep --max-freeze plus this under the units' --freeze-wait)")
	fs.BoolVar(&cfg.Retire, "retire", cfg.Retire, "once cold, delete the old data (final: no undo after it)")
	dryRun := fs.Bool("dry-run", false, "print what would happen, with the sizes and an estimate of the time, and change nothing")
	abort := fs.Bool("abort", false, "undo a move that has not switched yet: unfreeze the old storage, forget the copy, warm again")
	undo := fs.Bool("undo", false, "move a cold unit back to the storage it left (before --retire deleted it)")
	return adminRead(ctx, e, fs, args, func(a *admin.Admin) error {
		if id == 0 {
			return usageErrorf("--unit is required")
		}
		if *abort && *undo {
			return usageErrorf("give one of --abort and --undo")
		}
		bar := newProgressBar(e.stdout, "cool")
		m, err := lifecycle.NewMover(cfg, lifecycle.Deps{Routes: a.Routes, Topology: a.Topology, Passwords: a.Passwords, Dialer: a.Dialer,
			Who: a.Who, Why: a.Why, Logger: slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
			Progress: showMove(bar), AfterStep: hangAfter(os.Getenv("TRADEUNIT_LIFECYCLE_HANG_AFTER"))})
		if err != nil {
			return err
		}
		switch {
		case *dryRun:
			p, err := m.Plan(ctx, id, to)
			if err != nil {
				return err
			}
			printPlan(e.stdout, p)
			return nil
		case *abort:
			if err := m.Abort(ctx, id); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "unit %d: move aborted; the unit is warm on its own storage again\n", id)
			return nil
		case *undo:
			if err := m.Undo(ctx, id); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "unit %d: moved back to its old storage; the unit is warm\n", id)
			return nil
		}
		r, err := m.Move(ctx, id, to)
		bar.done()
		for _, s := range r.Steps {
			fmt.Fprintf(e.stdout, "%-10s %9v  %s\n", s.Step, s.Took.Round(100*time.Microsecond), s.Note)
		}
		if err != nil {
			return err
		}
		u, _ := a.Routes.Current().Unit(id)
		fmt.Fprintf(e.stdout, "unit %d is %s on %s", id, u.Temperature, r.To)
		if r.FreezeWindow > 0 {
			fmt.Fprintf(e.stdout, "; updates waited at most %v (from the freeze until every logic service read the copy)", r.FreezeWindow.Round(time.Millisecond))
		}
		fmt.Fprintln(e.stdout)
		return nil
	})
}

// hangAfter is the fault tests' hook: with TRADEUNIT_LIFECYCLE_HANG_AFTER
// set to a step, the mover stops for good once it has recorded that step,
// so that a test can kill it there and check that a new run resumes.
func hangAfter(step string) func(routing.Temperature) {
	if step == "" {
		return nil
	}
	return func(done routing.Temperature) {
		if string(done) == step {
			fmt.Fprintf(os.Stderr, "lifecycle: hanging after step %s (TRADEUNIT_LIFECYCLE_HANG_AFTER)\n", step)
			for {
				time.Sleep(time.Hour)
			}
		}
	}
}

func printPlan(w io.Writer, p *lifecycle.Plan) {
	fmt.Fprintf(w, "unit %d is %s; it would move from %s to %s:\n", p.Unit, p.Step, p.From, p.To)
	for i, s := range p.Steps {
		fmt.Fprintf(w, "  %d. %s\n", i+1, s)
	}
	fmt.Fprintf(w, "data: %d rows, about %s", p.Rows, formatBytes(p.Bytes))
	for _, t := range p.Tables {
		fmt.Fprintf(w, "; %s %d", t.Name, t.Rows)
	}
	fmt.Fprintf(w, "\nestimated time: %v at %d rows/s (the live copy; the freeze copies only what changes meanwhile)\n",
		p.Estimate.Round(time.Millisecond), int(p.Rate))
}

// showMove draws a move's progress on b.
func showMove(b *progressBar) func(lifecycle.Progress) {
	var step routing.Temperature
	return func(p lifecycle.Progress) {
		if p.Step != step { // each step's rate and ETA are its own
			step, b.start = p.Step, time.Now()
		}
		share := 1.0
		if p.TotalRows > 0 {
			share = float64(p.RowsChecked) / float64(p.TotalRows)
		}
		rate, eta := b.rateAndETA(p.RowsChecked, p.TotalRows)
		b.show(share, fmt.Sprintf("%-9s %-19s %d/%d rows checked, %d copied (%s)  %.0f rows/s  ETA %s",
			p.Step, p.Table, p.RowsChecked, p.TotalRows, p.Rows, formatBytes(p.Bytes), rate, eta))
	}
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
