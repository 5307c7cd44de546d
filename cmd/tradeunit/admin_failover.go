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

	"tradeunit"
	"tradeunit/admin"
	"tradeunit/daemon"
	"tradeunit/dsn"
	"tradeunit/replication"
	"tradeunit/routing"
)

// The admin commands of a replicated storage, a unit's or a directory
// shard's: fail over to a replica, and bring a fenced old primary back as a
// replica. The passwords of the administrative and replication users come
// from the secrets file or the environment (--secrets), never from flags.
var (
	failoverCmd = &command{
		name:  "failover",
		usage: "--unit N | --shard N [--admin-user root] [--repl-user repl] [--secrets FILE] [--max-backlog 0] [--apply-timeout 30s] [--json]",
		short: "promote the most up-to-date replica of a unit's (or directory shard's) storage: fence the old primary, unmap it, promote, remap, re-point the replicas",
		run:   runFailover,
	}
	rejoinCmd = &command{
		name:  "rejoin",
		usage: "--unit N | --shard N [--server HOST:PORT] [--admin-user root] [--repl-user repl] [--secrets FILE] [--json]",
		short: "make a fenced old primary (restarted read-only) a replica of the unit's (or directory shard's) primary again, unless it holds errant transactions",
		run:   runRejoin,
	}
)

// replicationFlags are the users the replication operations connect as:
// the storage topology names only the application user.
func replicationFlags(fs *flag.FlagSet) *admin.FailoverOptions {
	o := admin.DefaultFailoverOptions()
	fs.StringVar(&o.AdminUser, "admin-user", o.AdminUser, "administrative user of the MariaDB servers (fences, promotes, re-points); its password from --secrets")
	fs.StringVar(&o.ReplUser, "repl-user", o.ReplUser, "replication user the replicas connect to the new primary as; its password from --secrets")
	return &o
}

// storageFlags add --unit and --shard: the storage entry a command acts
// on. The returned function, called once the flags are parsed, names it.
func storageFlags(fs *flag.FlagSet) func() (routing.StorageRef, error) {
	var unit, shard tradeunit.UnitID
	daemon.UnitVar(fs, &unit, "unit", "the unit whose storage it is")
	daemon.UnitVar(fs, &shard, "shard", "the directory shard whose storage it is (instead of --unit)")
	return func() (routing.StorageRef, error) {
		switch {
		case unit != 0 && shard != 0, unit == 0 && shard == 0:
			return routing.StorageRef{}, errors.New("name one storage: --unit N or --shard N")
		case shard != 0:
			return routing.ShardRef(routing.ShardID(shard)), nil
		}
		return routing.UnitRef(unit), nil
	}
}

// flagOf is the flag that names ref: "--unit 3", "--shard 1".
func flagOf(ref routing.StorageRef) string { return fmt.Sprintf("--%s %d", ref.Kind, ref.ID) }

func runFailover(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	target := storageFlags(fs)
	o := replicationFlags(fs)
	fs.Uint64Var(&o.MaxBacklog, "max-backlog", o.MaxBacklog, "refuse a replica with more than this many transactions received but not applied (0: no bound)")
	fs.DurationVar(&o.ApplyTimeout, "apply-timeout", o.ApplyTimeout, "how long the chosen replica may take to apply what it received")
	fs.BoolVar(&o.AllowUnreachable, "allow-unreachable-replica", o.AllowUnreachable,
		"promote even if a replica cannot be read (it may hold acknowledged orders the others lack: only if it is lost for good)")
	asJSON := fs.Bool("json", false, "print the result as JSON (its steps included) instead of each step as it goes")
	return adminRead(ctx, e, fs, args, func(a *admin.Admin) error {
		ref, err := target()
		if err != nil {
			return err
		}
		if !*asJSON {
			o.Progress = func(s admin.FailoverStep) {
				fmt.Fprintf(e.stdout, "%-15s %9v  %s\n", s.Name, s.Took.Round(100*time.Microsecond), s.Detail)
			}
		}
		res, err := a.FailoverStorage(ctx, ref, *o)
		if *asJSON && res != nil {
			if perr := printJSON(e.stdout, failoverJSON(res, err)); perr != nil {
				return perr
			}
		}
		if err != nil {
			if errors.Is(err, replication.ErrNoSafeReplica) {
				return fmt.Errorf("%w\n(start the replicas, or with one lost for good, --allow-unreachable-replica)", err)
			}
			return err
		}
		if *asJSON {
			return nil
		}
		old := "none"
		if res.OldPrimary.Scheme != "" {
			old = res.OldPrimary.String()
			if !res.OldFenced {
				old += " (unreachable: assumed dead; its replicas stopped receiving from it)"
			}
		}
		fmt.Fprintf(e.stdout, "%s failed over in %v: primary %s (was %s)\n", res.Target, res.Took.Round(time.Millisecond), res.NewPrimary, old)
		for _, r := range res.Colocated {
			fmt.Fprintf(e.stdout, "%s, on the same servers, failed over with it\n", r)
		}
		fmt.Fprintf(e.stdout, "storage topology revision %d; the old primary is listed as fenced: restart it read-only, then tradeunit admin rejoin %s\n",
			res.Revision, flagOf(res.Target))
		return nil
	})
}

// failoverResultJSON is a failover's result as --json prints it.
type failoverResultJSON struct {
	Target     routing.StorageRef   `json:"target"`
	Colocated  []routing.StorageRef `json:"colocated,omitempty"`
	OldPrimary dsn.DSN              `json:"old_primary,omitzero"`
	OldFenced  bool                 `json:"old_fenced"`
	NewPrimary dsn.DSN              `json:"new_primary,omitzero"`
	Replicas   []dsn.DSN            `json:"replicas,omitempty"`
	Revision   int64                `json:"revision,omitempty"`
	RemappedMS float64              `json:"remapped_ms,omitempty"`
	TookMS     float64              `json:"took_ms,omitempty"`
	Steps      []failoverStepJSON   `json:"steps"`
	Error      string               `json:"error,omitempty"` // the failover stopped: the steps say where
}

type failoverStepJSON struct {
	Name   string  `json:"name"`
	TookMS float64 `json:"took_ms"`
	Detail string  `json:"detail"`
}

func failoverJSON(r *admin.FailoverResult, err error) failoverResultJSON {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	out := failoverResultJSON{Target: r.Target, Colocated: r.Colocated, OldPrimary: r.OldPrimary, OldFenced: r.OldFenced,
		NewPrimary: r.NewPrimary, Replicas: r.Replicas, Revision: r.Revision, RemappedMS: ms(r.Remapped), TookMS: ms(r.Took),
		Steps: []failoverStepJSON{}}
	for _, s := range r.Steps {
		out.Steps = append(out.Steps, failoverStepJSON{Name: s.Name, TookMS: ms(s.Took), Detail: s.Detail})
	}
	if err != nil {
		out.Error = err.Error()
	}
	return out
}

func runRejoin(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	target := storageFlags(fs)
	server := fs.String("server", "", "the fenced server to rejoin, HOST:PORT (default: every fenced server of the storage)")
	o := replicationFlags(fs)
	asJSON := fs.Bool("json", false, "print the storage's entry in the topology afterwards as JSON")
	return adminRead(ctx, e, fs, args, func(a *admin.Admin) error {
		ref, err := target()
		if err != nil {
			return err
		}
		t, err := a.RejoinStorage(ctx, ref, *server, *o)
		if err != nil {
			if errors.Is(err, replication.ErrErrantGTIDs) {
				return fmt.Errorf("%w\n(it holds transactions no other server has: rebuild it from the primary, then rejoin)", err)
			}
			return err
		}
		if *asJSON {
			st, _ := t.Entry(ref)
			return printJSON(e.stdout, struct {
				Target   routing.StorageRef `json:"target"`
				Revision int64              `json:"revision"`
				*routing.Storage
			}{ref, t.Revision, st})
		}
		fmt.Fprintf(e.stdout, "%s: fenced server(s) rejoined as replicas; storage topology revision %d\n", ref, t.Revision)
		return nil
	})
}

// printStorage prints each unit's storage servers.
func printStorage(w io.Writer, views []admin.StorageView) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "UNIT\tROLE\tSERVER\tZONE\tREAD-ONLY\tSEMI-SYNC\tRECEIVING\tLAG\tLAST FAILOVER\tNOTE")
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
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.Unit, role, s.DSN, orDash(s.Zone), ro, semi, recv, lag, last,
				orDash(strings.SplitN(s.Error, "\n", 2)[0]))
		}
		if v.Primary == nil {
			fmt.Fprintf(tw, "%d\tprimary\t(none: failing over)\t\t\t\t\t\t%s\t\n", v.Unit, last)
		} else {
			row("primary", *v.Primary)
		}
		for _, s := range v.Replicas {
			row("replica", s)
		}
		for _, s := range v.Fenced {
			row("fenced", s)
		}
		if v.ColdCopy != nil {
			row("cold copy", *v.ColdCopy)
		}
		if v.Previous != nil {
			row("previous", *v.Previous)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, v := range views {
		for _, warning := range v.Warnings {
			fmt.Fprintf(w, "warning: unit %d: %s\n", v.Unit, warning)
		}
	}
	return nil
}
