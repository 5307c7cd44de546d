package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"tradeunit/replication"
	"tradeunit/replication/localdb"
)

var mariadbCmd = &command{
	name:  "mariadb",
	usage: "up --dir DIR [--instances 3] [--base-port 3307] [--heartbeat 0]",
	short: "run a local replicated MariaDB set in the foreground: one primary, semi-sync GTID replicas (Ctrl-C stops it)",
}

func init() { mariadbCmd.run = runMariaDB }

func runMariaDB(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "up" {
		return errors.New("want: tradeunit mariadb up --dir DIR (tradeunit mariadb up -h)")
	}
	c := &command{name: "mariadb up", usage: mariadbCmd.usage[len("up "):], short: mariadbCmd.short}
	fs := newFlags(c)
	dir := fs.String("dir", "", "directory of the set (required); a directory holding a set resumes it, data and ports included")
	instances := fs.Int("instances", 3, "number of servers: one primary, the rest replicas (at least 2)")
	basePort := fs.Int("base-port", 3307, "port of the first server, the others follow (0: free ports)")
	heartbeat := fs.Duration("heartbeat", 0, "write a heartbeat on the primary this often, for replica lag (0: off)")
	logger := logLevelFlag(fs)
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("--dir is required")
	}
	set, err := localdb.Start(ctx, localdb.Config{Dir: *dir, Instances: *instances, BasePort: *basePort, Logger: logger()})
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
	printSet(stdout, set, primary, *heartbeat)
	<-ctx.Done()
	fmt.Fprintln(stdout, "\nstopping the MariaDB servers...")
	if err := set.Close(); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "stopped; the data is in", set.Dir)
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
	fmt.Fprintf(&b, "\nroot (admin, not fenced by read_only):\n")
	for _, in := range set.Instances {
		fmt.Fprintf(&b, "  %s  %s\n", in.Name, in.RootDSN())
	}
	fmt.Fprintf(&b, "application user %s (no SUPER: read_only fences it), one database per unit:\n", localdb.AppUser)
	for _, in := range set.Instances {
		fmt.Fprintf(&b, "  %s  %s\n", in.Name, in.AppDSN("tradeunit_u1"))
	}
	fmt.Fprintf(&b, "\nunit storage in a routing table (logic services started with --routes follow it; admin failover changes it):\n")
	var replicas []string
	for _, in := range set.Instances {
		if in != primary {
			replicas = append(replicas, fmt.Sprintf("%q", "mysql:"+in.AppDSN("tradeunit_u1")))
		}
	}
	fmt.Fprintf(&b, "  \"storage\": {\"primary\": %q,\n              \"replicas\": [%s]}\n",
		"mysql:"+primary.AppDSN("tradeunit_u1"), strings.Join(replicas, ",\n                           "))
	fmt.Fprintf(&b, "unit storage on the primary only:  tradeunit unit --unit 1 --db 'mysql:%s' ...\n", primary.AppDSN("tradeunit_u1"))
	fmt.Fprintf(&b, "shell on the primary:              mariadb -h127.0.0.1 -P%d -uroot\n", primary.Port)
	if heartbeat > 0 {
		fmt.Fprintf(&b, "heartbeat every %v into %s on the primary\n", heartbeat, replication.HeartbeatDB)
	}
	fmt.Fprintln(&b, "\nCtrl-C stops the servers cleanly; the same command again resumes the set with its data.")
	io.WriteString(w, b.String())
}
