package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"tradeunit"
	"tradeunit/admin"
	"tradeunit/daemon/proxyd"
	"tradeunit/routing"
)

// The admin commands of the merchant-key directory: list its shards,
// register the records units made before it, move buckets between shards.
var (
	adminDirectoryCmd = &command{
		name:  "directory",
		usage: "shards|backfill|move [flags]",
		short: "the merchant-key directory: its shards, registering records made before it, moving buckets between shards",
	}
	dirShardsCmd = &command{
		name:  "shards",
		usage: "[--count] [--json]",
		short: "every directory shard: its buckets, frozen buckets, availability, service and storage (--count: its entries)",
		run:   runDirShards,
	}
	dirBackfillCmd = &command{
		name:  "backfill",
		usage: "[--unit N] [--batch 100] [--timeout 3s] [--json]",
		short: "register the orders and refunds units made before the directory as its entries, then verify every one",
		long: "Each unit's storage is read (read-only) and each record's entry put through its shard's service. Run it again\n" +
			"at will: what is there is counted, not written again. An entry naming another record (a duplicate made before\n" +
			"the directory) is reported and never overwritten; keys whose bucket is being moved are left for a later run.\n" +
			"It exits 1 unless every record of every unit is named by its key's entry.",
		run: runDirBackfill,
	}
	dirMoveCmd = &command{
		name:  "move",
		usage: "--buckets FROM-TO --to SHARD [--settle DURATION] [--proxy-timeout 3s] [--abort] [--json]",
		short: "move buckets to another shard: freeze, wait for the proxies, copy, verify, switch, delete the old copies",
		long: "While the buckets are frozen their keys are refused (503, retry later). A failure before the switch unfreezes\n" +
			"them on their shard, which lost nothing; if even that fails they stay frozen and the same command resumes the\n" +
			"move (--abort unfreezes instead). Run again after a move, it deletes the copies a cut-short run left behind.",
		run: runDirMove,
	}
)

func init() {
	adminDirectoryCmd.sub = []*command{dirShardsCmd, dirBackfillCmd, dirMoveCmd}
}

func runDirShards(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	count := fs.Bool("count", false, "count each shard's entries in its storage (read-only; a scan of the shard)")
	asJSON := fs.Bool("json", false, "print JSON")
	return adminRead(ctx, e, fs, args, func(a *admin.Admin) error {
		views, err := a.Shards(ctx, *count)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(e.stdout, views)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SHARD\tBUCKETS\tCOUNT\tFROZEN\tAVAILABLE\tENTRIES\tLOGIC\tSTORAGE")
		for _, v := range views {
			entries := "-"
			switch {
			case v.Error != "":
				entries = "? " + strings.SplitN(v.Error, "\n", 2)[0]
			case v.Entries >= 0:
				entries = fmt.Sprint(v.Entries)
			}
			fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", v.Shard, admin.FormatRanges(v.Buckets), v.BucketN,
				orDash(admin.FormatRanges(v.Frozen)), yesNo(v.Available), entries, strings.Join(v.LogicAddrs, ","), v.Storage)
		}
		return tw.Flush()
	})
}

func runDirBackfill(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	o := admin.DefaultBackfillOptions()
	id := unitFlag(fs)
	fs.IntVar(&o.Batch, "batch", o.Batch, "entries per put to a shard")
	fs.DurationVar(&o.CallTimeout, "timeout", o.CallTimeout, "timeout of one call to one shard replica")
	asJSON := fs.Bool("json", false, "print JSON")
	return adminRead(ctx, e, fs, args, func(a *admin.Admin) error {
		if *id != 0 {
			o.Units = []tradeunit.UnitID{*id}
		}
		o.Progress = func(u admin.UnitBackfill) {
			fmt.Fprintf(e.stderr, "unit %d done: %d orders, %d refunds read\n", u.Unit, u.Orders.Seen, u.Refunds.Seen)
		}
		res, err := a.Backfill(ctx, o)
		if res != nil {
			if *asJSON {
				if perr := printJSON(e.stdout, res); perr != nil {
					return perr
				}
			} else if perr := printBackfill(e.stdout, res); perr != nil {
				return perr
			}
		}
		if err != nil {
			return err
		}
		if !res.Verified {
			orders, refunds := res.Totals()
			return fmt.Errorf("%d records are not named by their key's entry (listed above): a conflict is a duplicate made before "+
				"the directory, for people to settle; a deferred one needs another run", orders.Unverified+refunds.Unverified)
		}
		if !*asJSON {
			fmt.Fprintln(e.stdout, "verified: every order and refund of every unit is named by its key's entry")
		}
		return nil
	})
}

// printBackfill prints the counts of each unit, the totals and the
// problems.
func printBackfill(w io.Writer, res *admin.BackfillResult) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "UNIT\tRECORDS\tSEEN\tVIA DIRECTORY\tREGISTERED\tTOOK OVER\tALREADY\tCONFLICTS\tDEFERRED\tINVALID\tVERIFIED\tUNVERIFIED\t")
	row := func(unit, kind string, c admin.RecordCounts) {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", unit, kind, c.Seen, c.ViaDirectory, c.Registered,
			c.TookOver, c.Already, c.Conflicts, c.Deferred, c.Invalid, c.Verified, c.Unverified)
	}
	for _, u := range res.Units {
		row(fmt.Sprint(u.Unit), "orders", u.Orders)
		row(fmt.Sprint(u.Unit), "refunds", u.Refunds)
	}
	orders, refunds := res.Totals()
	row("all", "orders", orders)
	row("all", "refunds", refunds)
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(res.Problems) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROBLEM\tKEY\tUNIT\tRECORD\tENTRY NAMES\tDETAIL")
	for _, p := range res.Problems {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", p.Kind, p.Key, p.Unit, p.RecordNo, orDash(p.EntryRecordNo), p.Detail)
	}
	if res.ProblemsOmitted > 0 {
		fmt.Fprintf(tw, "... and %d more\t\t\t\t\t\n", res.ProblemsOmitted)
	}
	return tw.Flush()
}

func runDirMove(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	o := admin.DefaultMoveOptions()
	o.ProxyCallTimeout = proxyd.DefaultConfig().Proxy.UnitTimeout
	buckets := fs.String("buckets", "", "the buckets to move, FROM-TO (both included) or one N; all of them on one shard (required)")
	to := fs.Uint("to", 0, "the shard to move them to (required)")
	fs.DurationVar(&o.Settle, "settle", o.Settle, "wait this long once the buckets are frozen, before copying (0: 1s + --proxy-timeout per replica of their shard)")
	fs.DurationVar(&o.ProxyCallTimeout, "proxy-timeout", o.ProxyCallTimeout, "the proxies' --unit-timeout: how long one of their calls to a shard replica may take")
	abort := fs.Bool("abort", false, "end a move that stopped before its switch: unfreeze the buckets and delete the copies on --to")
	asJSON := fs.Bool("json", false, "print JSON")
	return adminRead(ctx, e, fs, args, func(a *admin.Admin) error {
		if *buckets == "" || *to == 0 {
			return usageErrorf("want --buckets FROM-TO and --to SHARD")
		}
		r, err := admin.ParseBucketRange(*buckets)
		if err != nil {
			return usageErrorf("--buckets: %s", tradeunit.ErrorMessage(err))
		}
		if err := tradeunit.UnitID(*to).Validate(); err != nil {
			return usageErrorf("--to: %s", tradeunit.ErrorMessage(err))
		}
		if !*asJSON {
			o.Progress = func(s admin.MoveStep) {
				fmt.Fprintf(e.stdout, "%-8s %9v  %s\n", s.Name, (time.Duration(s.TookMS * float64(time.Millisecond))).Round(100*time.Microsecond), s.Detail)
			}
		}
		var res *admin.MoveResult
		if *abort {
			res, err = a.Abort(ctx, r, routing.ShardID(*to), o)
		} else {
			res, err = a.Move(ctx, r, routing.ShardID(*to), o)
		}
		if *asJSON && res != nil {
			if perr := printJSON(e.stdout, res); perr != nil {
				return perr
			}
		}
		if err != nil {
			return err
		}
		if !*asJSON {
			switch {
			case *abort:
				fmt.Fprintf(e.stdout, "move of buckets %s aborted: shard %d holds them\n", *buckets, res.From)
			case res.AlreadyMoved:
				fmt.Fprintf(e.stdout, "buckets %s are on shard %d; %d leftover copies deleted\n", *buckets, res.To, res.Deleted)
			default:
				fmt.Fprintf(e.stdout, "buckets %s moved from shard %d to shard %d in %v: %d entries; routing table revision %d\n",
					*buckets, res.From, res.To, time.Duration(res.TookMS*float64(time.Millisecond)).Round(time.Millisecond), res.Copied, res.Revision)
			}
		}
		return nil
	})
}
