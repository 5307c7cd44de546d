package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"tradeunit"
	"tradeunit/admin"
	"tradeunit/dsn"
	"tradeunit/routing"
)

// The admin commands over units and the table: units, unit ACTION,
// merchant set-partition, history, init.
var (
	unitsCmd = &command{
		name:  "units",
		usage: "[--health URL] [--storage] [--json]",
		short: "every unit: number, partition, standby, temperature, takes new orders, blacklisted, health, new orders/s, logic replicas and their zones (--storage: its storage and zones); warns of a unit one zone's loss takes down",
		run:   runUnits,
	}
	unitGroupCmd = &command{
		name:  "unit",
		usage: "add|drain|undrain|set|cool|blacklist|unblacklist [flags]",
		short: "add a unit, stop or resume its new orders, change its settings, move it to cold storage, block or unblock it",
	}
	merchantGroupCmd = &command{
		name:  "merchant",
		usage: "set-partition --mchid M --partition P",
		short: "send a merchant's new orders to a partition",
	}
	historyCmd = &command{
		name:  "history",
		usage: "[--limit 20] [--json]",
		short: "the latest changes to the routing table and the storage topology: who, when, what",
		run:   runHistory,
	}
	initCmd = &command{
		name:  "init",
		usage: "--routes etcd://HOST:PORT/PREFIX --from FILE",
		short: "store a routing table file (and the storage topology beside it) in etcd as the first of PREFIX",
		run:   runInit,
	}
	unitAddCmd = &command{
		name:  "add",
		usage: "--unit N [--db DSN] [--logic ADDR,ADDR] [--logic-zone ADDR=ZONE]... [--partition P] [--weight W] [--label K=V] [--standby]",
		short: "prepare a new unit's storage and register it; it takes new orders at once (without --logic, tradeunit dev starts its logic services)",
		run:   runUnitAdd,
	}
	unitDrainCmd   = &command{name: "drain", usage: "--unit N [--force]", short: "stop new orders to a unit; updates and reads go on", run: runUnitDrain}
	unitUndrainCmd = &command{name: "undrain", usage: "--unit N", short: "let a drained unit take new orders again", run: runUnitUndrain}
	unitSetCmd     = &command{
		name:  "set",
		usage: "--unit N [--partition P] [--weight W] [--temperature hot|warm] [--available true|false] [--standby true|false] [--label K=V]... [--logic-zone ADDR=ZONE]... [--storage-zone SERVER=ZONE]...",
		short: "change a unit's settings (a label or zone with an empty value is removed)",
		run:   runUnitSet,
	}
	merchantSetPartitionCmd = &command{name: "set-partition", usage: merchantPartitionCmd.usage, short: merchantPartitionCmd.short,
		run: runMerchantPartition}
)

func init() {
	unitGroupCmd.sub = []*command{unitAddCmd, unitDrainCmd, unitUndrainCmd, unitSetCmd, unitCoolCmd, blacklistCmd, unblacklistCmd}
	merchantGroupCmd.sub = []*command{merchantSetPartitionCmd}
}

func runUnits(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	healthURL := fs.String("health", "http://127.0.0.1:8081", "health checker to ask for verdicts (tradeunit dev's by default); empty: none")
	storage := fs.Bool("storage", false, "show each unit's storage: primary, replicas, read-only, lag, semi-sync clients, last failover")
	asJSON := fs.Bool("json", false, "print JSON")
	return adminRead(ctx, e, fs, args, func(a *admin.Admin) error {
		if *storage {
			views, err := a.Storage(ctx)
			if err != nil {
				return err
			}
			if *asJSON {
				return printJSON(e.stdout, views)
			}
			return printStorage(e.stdout, views)
		}
		units, err := a.Units(ctx, *healthURL)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(e.stdout, units)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "UNIT\tPARTITION\tSTANDBY\tTEMP\tAVAILABLE\tNEW ORDERS\tBLACKLISTED\tHEALTH\tLATENCY\tORDERS/S (1m)\tLOGIC (ZONE)\tSTORAGE ZONES")
		for _, u := range units {
			lat, rate := "-", "?"
			if u.LatencyMS > 0 {
				lat = fmt.Sprintf("%.1fms", u.LatencyMS)
			}
			if u.OrdersPerSec >= 0 {
				rate = fmt.Sprintf("%.1f", u.OrdersPerSec)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%v\t%v\t%s\t%s\t%s\t%s\t%s\t%s\n", u.Unit, u.Partition, yesNo(u.Standby), u.Temperature,
				yesNo(u.Available), yesNo(u.NewOrders), orDash(u.Blacklisted), u.Health, lat, rate,
				withZones(u.LogicAddrs, u.LogicZones), orDash(zoneList(u.StorageZones)))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if z := a.Routes.Current().EvacuatedZones; len(z) > 0 {
			fmt.Fprintf(e.stdout, "evacuated zones: %s (traffic avoids them; tradeunit admin zone restore)\n", strings.Join(z, ", "))
		}
		for _, u := range units {
			for _, w := range u.Warnings {
				fmt.Fprintf(e.stdout, "warning: unit %d: %s\n", u.Unit, w)
			}
		}
		return nil
	})
}

// withZones lists addrs with each one's zone, if known: "a:1(x),b:1".
func withZones(addrs []string, zones map[string]string) string {
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a
		if z, ok := zones[a]; ok {
			out[i] += "(" + z + ")"
		}
	}
	return strings.Join(out, ",")
}

// zoneList lists a zones map as "k=zone,...", sorted by key.
func zoneList(zones map[string]string) string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(zones)) {
		out = append(out, k+"="+zones[k])
	}
	return strings.Join(out, ",")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func runUnitAdd(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	id := unitFlag(fs)
	var db dsn.DSN
	fs.TextVar(&db, "db", db, "storage DSN, without a password (default for a local cluster: an SQLite file beside its routing table)")
	logic := fs.String("logic", "", "logic-service addresses, comma-separated (none: tradeunit dev starts them)")
	partition := fs.String("partition", routing.DefaultPartition, "partition")
	weight := fs.Float64("weight", 0, "relative capacity for new orders (0: the default, 1)")
	var labels labelFlag
	fs.Var(&labels, "label", "KEY=VALUE label, repeatable (e.g. release=v2)")
	var logicZones labelFlag
	fs.Var(&logicZones, "logic-zone", "ADDR=ZONE: the zone of one of the --logic addresses, repeatable")
	standby := fs.Bool("standby", false, "a standby unit: it takes its partition's new orders only while no other unit of the partition can")
	f := newAdminFlags(fs)
	if err := noArgs(e, fs, args); err != nil {
		return err
	}
	if err := id.Validate(); err != nil {
		return usageErrorf("--unit: %s", tradeunit.ErrorMessage(err))
	}
	if db == (dsn.DSN{}) {
		dir, ok := localDataDir(f.routes)
		if !ok {
			return usageErrorf("--db is required for a routing table that is not a local cluster's")
		}
		db = dsn.MustParse("sqlite:" + filepath.Join(dir, fmt.Sprintf("unit-%d.db", *id)))
	}
	var addrs []string
	if *logic != "" {
		addrs = strings.Split(*logic, ",")
	}
	a, done, err := f.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	t, err := a.AddUnit(ctx, admin.NewUnit{ID: *id, Partition: *partition, LogicAddrs: addrs,
		Storage: routing.Storage{Primary: db}, Weight: *weight, Labels: labels.m, LogicZones: logicZones.m, Standby: *standby})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "unit %d added to partition %s, storage %s prepared\n", *id, *partition, db)
	if *standby {
		fmt.Fprintf(e.stdout, "it is a standby: it takes partition %s's new orders only while no other unit there can\n", *partition)
	}
	if len(addrs) == 0 {
		fmt.Fprintln(e.stdout, "no logic services given: tradeunit dev starts them and makes the unit available")
	} else {
		fmt.Fprintln(e.stdout, "it takes new orders at once; nothing moves")
	}
	printRevision(e.stdout, t)
	return nil
}

// localDataDir returns the data directory of a local cluster's routing
// table: the directory of a file, or the ./data of tradeunit dev on etcd.
func localDataDir(spec string) (string, bool) {
	if routing.IsEtcd(spec) {
		if defaultRoutes() != spec {
			return "", false
		}
		dir, err := filepath.Abs("data")
		return dir, err == nil
	}
	dir, err := filepath.Abs(filepath.Dir(spec))
	return dir, err == nil
}

func runUnitDrain(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	id := unitFlag(fs)
	force := fs.Bool("force", false, "drain even the last unit of its partition that takes new orders")
	return adminChange(ctx, e, fs, args, func(a *admin.Admin) (*routing.Table, string, error) {
		t, err := a.Drain(ctx, *id, *force)
		return t, fmt.Sprintf("unit %d drained: it takes no new orders; its orders are still served", *id), err
	})
}

func runUnitUndrain(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	id := unitFlag(fs)
	return adminChange(ctx, e, fs, args, func(a *admin.Admin) (*routing.Table, string, error) {
		t, err := a.Undrain(ctx, *id)
		return t, fmt.Sprintf("unit %d takes new orders again", *id), err
	})
}

func runUnitSet(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	id := unitFlag(fs)
	partition := fs.String("partition", "", "move the unit's new orders to this partition")
	weight := fs.String("weight", "", "relative capacity for new orders")
	temperature := fs.String("temperature", "", "hot or warm (the later steps are set by tradeunit admin unit cool)")
	available := fs.String("available", "", "true or false: mask a failed unit")
	standby := fs.String("standby", "", "true or false: a standby takes its partition's new orders only while no other unit there can")
	var labels, logicZones, storageZones labelFlag
	fs.Var(&labels, "label", "KEY=VALUE label, repeatable; KEY= removes it")
	fs.Var(&logicZones, "logic-zone", "ADDR=ZONE: the zone of one of the unit's logic addresses, repeatable; ADDR= removes it")
	fs.Var(&storageZones, "storage-zone", "SERVER=ZONE: the zone of one of the unit's storage servers (host:port, or a SQLite path) in the storage topology, repeatable; SERVER= removes it")
	return adminChange(ctx, e, fs, args, func(a *admin.Admin) (*routing.Table, string, error) {
		var c admin.UnitChanges
		if *partition != "" {
			c.Partition = partition
		}
		if *weight != "" {
			w, err := strconv.ParseFloat(*weight, 64)
			if err != nil {
				return nil, "", usageErrorf("--weight %q: want a number", *weight)
			}
			c.Weight = &w
		}
		if *temperature != "" {
			t := routing.Temperature(*temperature)
			c.Temperature = &t
		}
		if *available != "" {
			b, err := strconv.ParseBool(*available)
			if err != nil {
				return nil, "", usageErrorf("--available %q: want true or false", *available)
			}
			c.Available = &b
		}
		if *standby != "" {
			b, err := strconv.ParseBool(*standby)
			if err != nil {
				return nil, "", usageErrorf("--standby %q: want true or false", *standby)
			}
			c.Standby = &b
		}
		c.Labels, c.LogicZones, c.StorageZones = labels.m, logicZones.m, storageZones.m
		t, err := a.SetUnit(ctx, *id, c)
		if err != nil {
			return nil, "", err
		}
		u, _ := t.Unit(*id)
		msg := fmt.Sprintf("unit %d: partition %s, weight %g, temperature %s, available %v, standby %v, labels %v, logic %s",
			u.ID, u.Partition, u.Weight, u.Temperature, u.Available, u.Standby, u.Labels, withZones(u.LogicAddrs, u.LogicZones))
		if len(c.StorageZones) > 0 {
			msg += "; storage zones set in the storage topology"
		}
		return t, msg, nil
	})
}

func runHistory(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	limit := fs.Int("limit", 20, "how many changes")
	asJSON := fs.Bool("json", false, "print JSON")
	return adminRead(ctx, e, fs, args, func(a *admin.Admin) error {
		h, err := a.History(ctx, *limit)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(e.stdout, h)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "DOCUMENT\tREVISION\tTIME\tWHO\tSUBJECT\tWHAT\tWHY")
		for _, c := range h {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", c.Document, c.Revision, c.Time.Format("2006-01-02 15:04:05Z07:00"),
				c.Who, c.Subject, c.What, c.Why)
		}
		return tw.Flush()
	})
}

func runInit(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	from := fs.String("from", "", "routing table file to store; its storage topology is read from beside it")
	f := newAdminFlags(fs)
	if err := noArgs(e, fs, args); err != nil {
		return err
	}
	if !routing.IsEtcd(f.routes) || *from == "" {
		return usageErrorf("want --routes etcd://HOST:PORT/PREFIX and --from FILE")
	}
	data, err := os.ReadFile(*from)
	if err != nil {
		return err
	}
	t, err := routing.Parse(data)
	if err != nil {
		return err
	}
	operator, err := f.operator()
	if err != nil {
		return err
	}
	change := routing.Change{Who: operator.Name, Subject: operator.Subject, Why: f.why, What: "init from " + *from}
	if data, err := os.ReadFile(routing.TopologyPath(*from)); err == nil {
		top, err := routing.ParseTopology(data)
		if err != nil {
			return err
		}
		if err := routing.InitTopologyEtcd(ctx, f.routes, f.keys.ClientTLS(), top, change); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "stored %s (%d units' storage) in %s\n", routing.TopologyPath(*from), len(top.Units), f.routes)
	}
	if err := routing.InitEtcd(ctx, f.routes, f.keys.ClientTLS(), t, change); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "stored %s (%d units, revision %d) in %s\n", *from, len(t.Units), t.Revision, f.routes)
	return nil
}

// labelFlag collects repeated --label KEY=VALUE flags.
type labelFlag struct{ m map[string]string }

func (l *labelFlag) String() string { return fmt.Sprint(l.m) }

func (l *labelFlag) Set(s string) error {
	k, v, err := parseLabel(s)
	if err != nil {
		return err
	}
	if l.m == nil {
		l.m = map[string]string{}
	}
	l.m[k] = v
	return nil
}
