package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"tradeunit"
	"tradeunit/admin"
	"tradeunit/replication"
	"tradeunit/store/sqlstore"
)

// The admin subcommands of a unit's replicated storage: fail over to a
// replica, and bring a fenced old primary back as a replica.
var (
	failoverCmd = &command{
		name:  "failover",
		usage: "--unit N [--admin-user root --admin-password P] [--repl-user repl --repl-password P] [--max-backlog 0] [--apply-timeout 30s]",
		short: "promote the unit's most up-to-date replica: fence the old primary, unmap it, promote, remap, re-point the replicas",
	}
	rejoinCmd = &command{
		name:  "rejoin",
		usage: "--unit N [--server HOST:PORT] [--admin-user root --admin-password P] [--repl-user repl --repl-password P]",
		short: "make a fenced old primary (restarted read-only) a replica of the unit's primary again, unless it holds errant transactions",
	}
)

func init() {
	failoverCmd.run = runFailover
	rejoinCmd.run = runRejoin
	adminCommands = append(adminCommands, failoverCmd, rejoinCmd)
}

// replicationFlags are the credentials the replication operations use:
// the routing table holds only the application user's DSNs.
func replicationFlags(fs *flag.FlagSet) *admin.FailoverOptions {
	o := &admin.FailoverOptions{}
	fs.StringVar(&o.AdminUser, "admin-user", "root", "administrative user of the unit's MariaDB servers (fences, promotes, re-points)")
	fs.StringVar(&o.AdminPassword, "admin-password", "", "its password")
	fs.StringVar(&o.ReplUser, "repl-user", "repl", "replication user the replicas connect to the new primary as")
	fs.StringVar(&o.ReplPassword, "repl-password", "repl", "its password")
	return o
}

func runFailover(ctx context.Context, args []string, stdout io.Writer) error {
	fs, af := newAdminFlags(failoverCmd)
	id := fs.Uint("unit", 0, "unit number")
	o := replicationFlags(fs)
	fs.Uint64Var(&o.MaxBacklog, "max-backlog", 0, "refuse a replica with more than this many transactions received but not applied (0: no bound)")
	fs.DurationVar(&o.ApplyTimeout, "apply-timeout", 30*time.Second, "how long the chosen replica may take to apply what it received")
	fs.BoolVar(&o.AllowUnreachable, "allow-unreachable-replica", false,
		"promote even if a replica cannot be read (it may hold acknowledged orders the others lack: only if it is lost for good)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	a, done, err := af.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	o.Progress = func(s admin.FailoverStep) {
		fmt.Fprintf(stdout, "%-15s %9v  %s\n", s.Name, s.Took.Round(100*time.Microsecond), s.Detail)
	}
	res, err := a.Failover(ctx, tradeunit.UnitID(*id), *o)
	if err != nil {
		if errors.Is(err, replication.ErrNoSafeReplica) {
			return fmt.Errorf("%w\n(start the replicas, or with one lost for good, --allow-unreachable-replica)", err)
		}
		return err
	}
	old := "none"
	if res.OldPrimary != "" {
		old = sqlstore.Redact(res.OldPrimary)
		if !res.OldFenced {
			old += " (unreachable: assumed dead; its replicas stopped receiving from it)"
		}
	}
	fmt.Fprintf(stdout, "unit %d failed over in %v: primary %s (was %s)\n", res.Unit, res.Took.Round(time.Millisecond),
		sqlstore.Redact(res.NewPrimary), old)
	fmt.Fprintf(stdout, "routing table revision %d; the old primary is listed as fenced: restart it read-only, then tradeunit admin rejoin --unit %d\n",
		res.Revision, res.Unit)
	return nil
}

func runRejoin(ctx context.Context, args []string, stdout io.Writer) error {
	fs, af := newAdminFlags(rejoinCmd)
	id := fs.Uint("unit", 0, "unit number")
	server := fs.String("server", "", "the fenced server to rejoin, HOST:PORT (default: every fenced server of the unit)")
	o := replicationFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	a, done, err := af.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	t, err := a.Rejoin(ctx, tradeunit.UnitID(*id), *server, *o)
	if err != nil {
		if errors.Is(err, replication.ErrErrantGTIDs) {
			return fmt.Errorf("%w\n(it holds transactions no other server has: rebuild it from the primary, then rejoin)", err)
		}
		return err
	}
	fmt.Fprintf(stdout, "unit %d: fenced server(s) rejoined as replicas\n", *id)
	printRevision(stdout, t)
	return nil
}
