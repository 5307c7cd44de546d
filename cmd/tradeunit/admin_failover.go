package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"tradeunit/admin"
	"tradeunit/replication"
)

// The admin commands of a unit's replicated storage: fail over to a
// replica, and bring a fenced old primary back as a replica. The passwords
// of the administrative and replication users come from the secrets file
// or the environment (--secrets), never from flags.
var (
	failoverCmd = &command{
		name:  "failover",
		usage: "--unit N [--admin-user root] [--repl-user repl] [--secrets FILE] [--max-backlog 0] [--apply-timeout 30s]",
		short: "promote the unit's most up-to-date replica: fence the old primary, unmap it, promote, remap, re-point the replicas",
		run:   runFailover,
	}
	rejoinCmd = &command{
		name:  "rejoin",
		usage: "--unit N [--server HOST:PORT] [--admin-user root] [--repl-user repl] [--secrets FILE]",
		short: "make a fenced old primary (restarted read-only) a replica of the unit's primary again, unless it holds errant transactions",
		run:   runRejoin,
	}
)

// replicationFlags are the users the replication operations connect as:
// the storage topology names only the application user.
func replicationFlags(fs *flag.FlagSet) *admin.FailoverOptions {
	o := admin.DefaultFailoverOptions()
	fs.StringVar(&o.AdminUser, "admin-user", o.AdminUser, "administrative user of the unit's MariaDB servers (fences, promotes, re-points); its password from --secrets")
	fs.StringVar(&o.ReplUser, "repl-user", o.ReplUser, "replication user the replicas connect to the new primary as; its password from --secrets")
	return &o
}

func runFailover(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	id := unitFlag(fs)
	o := replicationFlags(fs)
	fs.Uint64Var(&o.MaxBacklog, "max-backlog", o.MaxBacklog, "refuse a replica with more than this many transactions received but not applied (0: no bound)")
	fs.DurationVar(&o.ApplyTimeout, "apply-timeout", o.ApplyTimeout, "how long the chosen replica may take to apply what it received")
	fs.BoolVar(&o.AllowUnreachable, "allow-unreachable-replica", o.AllowUnreachable,
		"promote even if a replica cannot be read (it may hold acknowledged orders the others lack: only if it is lost for good)")
	return adminRead(ctx, e, fs, args, func(a *admin.Admin) error {
		o.Progress = func(s admin.FailoverStep) {
			fmt.Fprintf(e.stdout, "%-15s %9v  %s\n", s.Name, s.Took.Round(100*time.Microsecond), s.Detail)
		}
		res, err := a.Failover(ctx, *id, *o)
		if err != nil {
			if errors.Is(err, replication.ErrNoSafeReplica) {
				return fmt.Errorf("%w\n(start the replicas, or with one lost for good, --allow-unreachable-replica)", err)
			}
			return err
		}
		old := "none"
		if res.OldPrimary.Scheme != "" {
			old = res.OldPrimary.String()
			if !res.OldFenced {
				old += " (unreachable: assumed dead; its replicas stopped receiving from it)"
			}
		}
		fmt.Fprintf(e.stdout, "unit %d failed over in %v: primary %s (was %s)\n", res.Unit, res.Took.Round(time.Millisecond), res.NewPrimary, old)
		fmt.Fprintf(e.stdout, "storage topology revision %d; the old primary is listed as fenced: restart it read-only, then tradeunit admin rejoin --unit %d\n",
			res.Revision, res.Unit)
		return nil
	})
}

func runRejoin(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	id := unitFlag(fs)
	server := fs.String("server", "", "the fenced server to rejoin, HOST:PORT (default: every fenced server of the unit)")
	o := replicationFlags(fs)
	return adminRead(ctx, e, fs, args, func(a *admin.Admin) error {
		t, err := a.Rejoin(ctx, *id, *server, *o)
		if err != nil {
			if errors.Is(err, replication.ErrErrantGTIDs) {
				return fmt.Errorf("%w\n(it holds transactions no other server has: rebuild it from the primary, then rejoin)", err)
			}
			return err
		}
		fmt.Fprintf(e.stdout, "unit %d: fenced server(s) rejoined as replicas; storage topology revision %d\n", *id, t.Revision)
		return nil
	})
}

// printStorage prints each unit's storage servers.
func printStorage(w io.Writer, views []admin.StorageView) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "UNIT\tROLE\tSERVER\tREAD-ONLY\tSEMI-SYNC\tRECEIVING\tLAG\tLAST FAILOVER\tNOTE")
	for _, v := range views {
		last := "-"
		if !v.LastFailover.IsZero() {
			last = v.LastFailover.Format(time.RFC3339)
		}
		row := func(role string, s admin.ServerView) {
			lag, recv, semi := "-", "-", "-"
			if role == "replica" && s.Error == "" && s.DSN.Scheme == "mysql" {
				recv = yesNo(s.Receiving)
				if s.LagMS >= 0 {
					lag = fmt.Sprintf("%dms", s.LagMS)
				}
			}
			if role == "primary" && s.DSN.Scheme == "mysql" && s.Error == "" {
				semi = fmt.Sprint(s.SemiSyncClients)
			}
			ro := yesNo(s.ReadOnly)
			if s.Error != "" {
				ro = "?"
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.Unit, role, s.DSN, ro, semi, recv, lag, last,
				orDash(strings.SplitN(s.Error, "\n", 2)[0]))
		}
		if v.Primary == nil {
			fmt.Fprintf(tw, "%d\tprimary\t(none: failing over)\t\t\t\t\t%s\t\n", v.Unit, last)
		} else {
			row("primary", *v.Primary)
		}
		for _, s := range v.Replicas {
			row("replica", s)
		}
		for _, s := range v.Fenced {
			row("fenced", s)
		}
	}
	return tw.Flush()
}
