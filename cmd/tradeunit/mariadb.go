package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"tradeunit/daemon"
	"tradeunit/replication"
	"tradeunit/replication/localdb"
)

var (
	mariadbCmd = &command{
		name:  "mariadb",
		usage: "up --dir DIR [flags]",
		short: "local replicated MariaDB sets for development and tests",
		sub:   []*command{mariadbUpCmd},
	}
	mariadbUpCmd = &command{
		name:  "up",
		usage: "--dir DIR [--instances 3] [--base-port 3307] [--heartbeat 0]",
		short: "run a local replicated MariaDB set in the foreground: one primary, semi-sync GTID replicas (Ctrl-C stops it)",
		run:   runMariaDBUp,
	}
)

func runMariaDBUp(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	cfg := localdb.DefaultConfig("")
	fs.StringVar(&cfg.Dir, "dir", cfg.Dir, "directory of the set (required); a directory holding a set resumes it, data and ports included")
	fs.IntVar(&cfg.Instances, "instances", cfg.Instances, "number of servers: one primary, the rest replicas (at least 2)")
	fs.IntVar(&cfg.BasePort, "base-port", 3307, "port of the first server, the others follow (0: free ports)")
	heartbeat := fs.Duration("heartbeat", 0, "write a heartbeat on the primary this often, for replica lag (0: off)")
	log := daemon.DefaultLogConfig()
	log.Flags(fs)
	if err := noArgs(e, fs, args); err != nil {
		return err
	}
	if cfg.Dir == "" {
		return usageErrorf("--dir is required")
	}
	cfg.Logger = log.Logger(e.stderr)
	set, err := localdb.Start(ctx, cfg)
	if err != nil {
		return err
	}
	primary, err := set.Primary(ctx)
	if err != nil {
		set.Close()
		return err
	}
	if *heartbeat > 0 {
		hb, err := replication.StartHeartbeat(ctx, primary.RootDSN(), *heartbeat)
		if err != nil {
			set.Close()
			return err
		}
		defer hb.Stop()
	}
	printSet(e.stdout, set, primary, *heartbeat)
	<-ctx.Done()
	fmt.Fprintln(e.stdout, "\nstopping the MariaDB servers...")
	if err := set.Close(); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, "stopped; the data is in", set.Dir)
	return nil
}

func printSet(w io.Writer, set *localdb.Set, primary *localdb.Instance, heartbeat time.Duration) {
	var b strings.Builder
	fmt.Fprintf(&b, "tradeunit mariadb: %d MariaDB servers in %s\n", len(set.Instances), set.Dir)
	fmt.Fprintln(&b, "GTID replication, semi-sync AFTER_SYNC; with no acknowledging replica the primary's commits wait.")
	fmt.Fprintln(&b)
	for _, in := range set.Instances {
		role := "primary"
		if in != primary {
			role = "replica of " + primary.Name
		}
		fmt.Fprintf(&b, "  %s  %-14s %s  pid %d  %s\n", in.Name, role, in.Addr(), in.Pid(), in.Dir)
	}
	fmt.Fprintf(&b, "\nusers: %s (administration), %s (replication), %s (the application: no SUPER, so read_only fences it)\n",
		localdb.RootUser, localdb.ReplUser, localdb.AppUser)
	fmt.Fprintf(&b, "their passwords, made at random for this set: %s (mode 600; pass it as --secrets)\n", set.SecretsPath())
	fmt.Fprintf(&b, "\nunit storage in the storage topology (logic services started with --routes follow it; admin failover changes it):\n")
	var replicas []string
	for _, in := range set.Instances {
		if in != primary {
			replicas = append(replicas, fmt.Sprintf("%q", in.AppStorage("tradeunit_u1")))
		}
	}
	fmt.Fprintf(&b, "  {\"unit\": 1, \"primary\": %q,\n   \"replicas\": [%s]}\n",
		primary.AppStorage("tradeunit_u1"), strings.Join(replicas, ",\n                 "))
	fmt.Fprintf(&b, "unit storage on the primary only:  tradeunit unit --unit 1 --db '%s' --secrets %s ...\n",
		primary.AppStorage("tradeunit_u1"), set.SecretsPath())
	fmt.Fprintf(&b, "shell on the primary:              mariadb -h127.0.0.1 -P%d -u%s -p  (the password is in %s)\n",
		primary.Port, localdb.RootUser, set.SecretsPath())
	if heartbeat > 0 {
		fmt.Fprintf(&b, "heartbeat every %v into %s on the primary\n", heartbeat, replication.HeartbeatDB)
	}
	fmt.Fprintln(&b, "\nCtrl-C stops the servers cleanly; the same command again resumes the set with its data.")
	io.WriteString(w, b.String())
}
