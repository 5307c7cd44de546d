package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"tradeunit/admin"
	"tradeunit/routing"
)

// The zone commands move what a machine room serves out of it before it is
// lost or taken down, and back.
var (
	zoneGroupCmd = &command{
		name:  "zone",
		usage: "evacuate|restore --zone Z [flags]",
		short: "move every storage primary and the traffic out of a zone (machine room), or let traffic back in",
	}
	zoneEvacuateCmd = &command{
		name:  "evacuate",
		usage: "--zone Z [--dry-run] [--force] [--admin-user root] [--repl-user repl] [--secrets FILE] [--apply-timeout 30s] [--json]",
		short: "hand every primary in the zone to a replica outside it (nothing lost), rejoin the old ones as replicas, then list the zone evacuated so traffic avoids it",
		run:   runZoneEvacuate,
	}
	zoneRestoreCmd = &command{
		name:  "restore",
		usage: "--zone Z [--admin-user root] [--repl-user repl] [--secrets FILE]",
		short: "let traffic back into an evacuated zone and rejoin its fenced servers as replicas; primaries stay where they are",
		run:   runZoneRestore,
	}
)

func init() { zoneGroupCmd.sub = []*command{zoneEvacuateCmd, zoneRestoreCmd} }

func runZoneEvacuate(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	zone := fs.String("zone", "", "the zone to evacuate")
	dryRun := fs.Bool("dry-run", false, "print the plan (and its refusals) and change nothing")
	force := fs.Bool("force", false, "run a plan with refusals: the units named there take no changes once the zone is gone")
	o := replicationFlags(fs)
	fs.DurationVar(&o.ApplyTimeout, "apply-timeout", o.ApplyTimeout, "how long a chosen replica may take to receive and apply all its old primary wrote")
	asJSON := fs.Bool("json", false, "print the plan (and, without --dry-run, the result) as JSON")
	return adminRead(ctx, e, fs, args, func(a *admin.Admin) error {
		if *zone == "" {
			return errors.New("name the zone: --zone Z")
		}
		plan, err := a.PlanEvacuation(*zone)
		if err != nil {
			return err
		}
		if *dryRun {
			if *asJSON {
				return printJSON(e.stdout, plan)
			}
			printEvacuationPlan(e.stdout, plan)
			if len(plan.Refusals) > 0 {
				return errors.New("the plan is refused (--force runs it anyway)")
			}
			return nil
		}
		if !*asJSON {
			printEvacuationPlan(e.stdout, plan)
			o.Progress = func(s admin.FailoverStep) {
				fmt.Fprintf(e.stdout, "  %-15s %9v  %s\n", s.Name, s.Took.Round(100*time.Microsecond), s.Detail)
			}
		}
		res, err := a.Evacuate(ctx, *zone, admin.EvacuateOptions{Failover: *o, Force: *force})
		if *asJSON && res != nil {
			if perr := printJSON(e.stdout, res); perr != nil {
				return perr
			}
		}
		if err != nil {
			return err
		}
		if !*asJSON {
			for _, f := range res.Failovers {
				fmt.Fprintf(e.stdout, "%s: primary %s (was %s), in %v\n", f.Target, f.NewPrimary.Server(), f.OldPrimary.Server(), f.Took.Round(time.Millisecond))
			}
			if len(res.Rejoined) > 0 {
				fmt.Fprintf(e.stdout, "rejoined as replicas: %s\n", strings.Join(res.Rejoined, ", "))
			}
			fmt.Fprintf(e.stdout, "zone %s evacuated: routing table revision %d; every proxy follows it within a second\n", *zone, res.Revision)
		}
		return nil
	})
}

// printEvacuationPlan prints an evacuation plan for a terminal.
func printEvacuationPlan(w io.Writer, p *admin.EvacuationPlan) {
	fmt.Fprintf(w, "evacuation of zone %s:\n", p.Zone)
	if len(p.Moves) == 0 {
		fmt.Fprintln(w, "  no storage primary is in the zone")
	}
	for _, m := range p.Moves {
		with := ""
		if len(m.Colocated) > 0 {
			with = fmt.Sprintf(" (with %v, on the same servers)", m.Colocated)
		}
		fmt.Fprintf(w, "  %s%s: primary %s hands over to one of [%s]\n", m.Entry, with, m.Primary, strings.Join(m.Candidates, ", "))
	}
	fmt.Fprintf(w, "  then traffic leaves the zone: logic replicas of units %v are called only as a last resort\n", p.Units)
	for _, r := range p.Refusals {
		fmt.Fprintf(w, "  REFUSED: %s\n", r)
	}
	for _, r := range p.Warnings {
		fmt.Fprintf(w, "  warning: %s\n", r)
	}
}

func runZoneRestore(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	zone := fs.String("zone", "", "the evacuated zone to let traffic back into")
	o := replicationFlags(fs)
	return adminChange(ctx, e, fs, args, func(a *admin.Admin) (*routing.Table, string, error) {
		if *zone == "" {
			return nil, "", errors.New("name the zone: --zone Z")
		}
		t, warnings, err := a.RestoreZone(ctx, *zone, *o)
		msg := "zone " + *zone + " restored: traffic may go there again; primaries stay where they are"
		for _, w := range warnings {
			msg += "\nwarning: " + w
		}
		return t, msg, err
	})
}
