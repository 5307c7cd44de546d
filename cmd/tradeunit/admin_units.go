package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"tradeunit"
	"tradeunit/admin"
	"tradeunit/routing"
)

// The admin subcommands over units and the table: units, unit ACTION,
// merchant set-partition, decode, history.
var (
	unitsCmd = &command{
		name:  "units",
		usage: "[--health URL] [--json]",
		short: "every unit: number, partition, temperature, takes new orders, blacklisted, health, new orders/s",
	}
	unitGroupCmd = &command{
		name:  "unit",
		usage: "add|drain|undrain|set|blacklist|unblacklist [flags]",
		short: "add a unit, stop or resume its new orders, change its settings, block or unblock it",
	}
	merchantGroupCmd = &command{
		name:  "merchant",
		usage: "set-partition --mchid M --partition P",
		short: "send a merchant's new orders to a partition",
	}
	adminDecodeCmd = &command{
		name:  "decode",
		usage: "ORDER_NO",
		short: "print the fields of an order number",
	}
	initCmd = &command{
		name:  "init",
		usage: "--routes etcd://HOST:PORT/PREFIX --from FILE",
		short: "store a routing table file in etcd as the first table of PREFIX",
	}
	historyCmd = &command{
		name:  "history",
		usage: "[--limit 20] [--json]",
		short: "the latest changes to the routing table: who, when, what",
	}
	unitAddCmd = &command{
		name:  "add",
		usage: "--unit N [--db DSN] [--logic ADDR,ADDR] [--partition P] [--weight W] [--label K=V]",
		short: "prepare a new unit's storage and register it; it takes new orders at once (without --logic, tradeunit dev starts its logic services)",
	}
	unitDrainCmd   = &command{name: "drain", usage: "--unit N [--force]", short: "stop new orders to a unit; updates and reads go on"}
	unitUndrainCmd = &command{name: "undrain", usage: "--unit N", short: "let a drained unit take new orders again"}
	unitSetCmd     = &command{
		name:  "set",
		usage: "--unit N [--partition P] [--weight W] [--temperature hot|warm|cold] [--available true|false] [--label K=V]...",
		short: "change a unit's settings (a label with an empty value is removed)",
	}
)

func init() {
	unitsCmd.run = runUnits
	unitGroupCmd.run = runUnitGroup
	merchantGroupCmd.run = runMerchantGroup
	adminDecodeCmd.run = runDecode
	historyCmd.run = runHistory
	initCmd.run = runInit
	unitAddCmd.run = runUnitAdd
	unitDrainCmd.run = runUnitDrain
	unitUndrainCmd.run = runUnitUndrain
	unitSetCmd.run = runUnitSet
	adminCommands = append(adminCommands, unitsCmd, unitGroupCmd, merchantGroupCmd, adminDecodeCmd, historyCmd, initCmd)
}

// unitActions are `tradeunit admin unit ACTION`; blacklist and unblacklist
// are the same commands as at the top level.
func unitActions() []*command {
	return []*command{unitAddCmd, unitDrainCmd, unitUndrainCmd, unitSetCmd, blacklistCmd, unblacklistCmd}
}

func runUnitGroup(ctx context.Context, args []string, stdout io.Writer) error {
	return dispatch(ctx, "unit", unitActions(), args, stdout)
}

func runMerchantGroup(ctx context.Context, args []string, stdout io.Writer) error {
	setPartition := *merchantPartitionCmd
	setPartition.name = "set-partition"
	return dispatch(ctx, "merchant", []*command{&setPartition}, args, stdout)
}

func dispatch(ctx context.Context, group string, actions []*command, args []string, stdout io.Writer) error {
	if len(args) > 0 {
		for _, c := range actions {
			if c.name == args[0] {
				return c.run(ctx, args[1:], stdout)
			}
		}
	}
	var names []string
	for _, c := range actions {
		names = append(names, c.name)
	}
	return fmt.Errorf("want tradeunit admin %s %s", group, strings.Join(names, "|"))
}

func runUnits(ctx context.Context, args []string, stdout io.Writer) error {
	fs, af := newAdminFlags(unitsCmd)
	healthURL := fs.String("health", "http://127.0.0.1:8081", "health checker to ask for verdicts (tradeunit dev's by default); empty: none")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	a, done, err := af.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	units, err := a.Units(ctx, *healthURL)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, units)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "UNIT\tPARTITION\tTEMP\tAVAILABLE\tNEW ORDERS\tBLACKLISTED\tHEALTH\tLATENCY\tORDERS/S (1m)\tLOGIC")
	for _, u := range units {
		lat, rate := "-", "?"
		if u.LatencyMS > 0 {
			lat = fmt.Sprintf("%.1fms", u.LatencyMS)
		}
		if u.OrdersPerSec >= 0 {
			rate = fmt.Sprintf("%.1f", u.OrdersPerSec)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%v\t%v\t%s\t%s\t%s\t%s\t%s\n", u.Unit, u.Partition, u.Temperature, yesNo(u.Available),
			yesNo(u.AcceptNew), orDash(u.Blacklisted), u.Health, lat, rate, strings.Join(u.LogicAddrs, ","))
	}
	return tw.Flush()
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

func runUnitAdd(ctx context.Context, args []string, stdout io.Writer) error {
	fs, af := newAdminFlags(unitAddCmd)
	id := fs.Uint("unit", 0, "the new unit's number: above every existing one")
	dsn := fs.String("db", "", "storage DSN (default for a local cluster: an SQLite file beside its routing table)")
	logic := fs.String("logic", "", "logic-service addresses, comma-separated (none: tradeunit dev starts them)")
	partition := fs.String("partition", routing.DefaultPartition, "partition")
	weight := fs.Float64("weight", 0, "relative capacity for new orders (default 1)")
	var labels labelFlag
	fs.Var(&labels, "label", "KEY=VALUE label, repeatable (e.g. release=v2)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *id == 0 || *id > uint(tradeunit.MaxUnitID) {
		return fmt.Errorf("--unit must be 1..%d", tradeunit.MaxUnitID)
	}
	if *dsn == "" {
		dir, ok := localDataDir(*af.routes)
		if !ok {
			return errors.New("--db is required for a routing table that is not a local cluster's")
		}
		*dsn = "sqlite:" + filepath.Join(dir, fmt.Sprintf("unit-%d.db", *id))
	}
	var addrs []string
	if *logic != "" {
		addrs = strings.Split(*logic, ",")
	}
	a, done, err := af.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	t, err := a.AddUnit(ctx, admin.NewUnit{ID: tradeunit.UnitID(*id), Partition: *partition, LogicAddrs: addrs,
		Storage: routing.Storage{Primary: *dsn}, Weight: *weight, Labels: labels.m})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "unit %d added to partition %s, storage %s prepared\n", *id, *partition, *dsn)
	if len(addrs) == 0 {
		fmt.Fprintln(stdout, "no logic services given: tradeunit dev starts them and makes the unit available")
	} else {
		fmt.Fprintln(stdout, "it takes new orders at once; nothing moves")
	}
	printRevision(stdout, t)
	return nil
}

// localDataDir returns the data directory of a local cluster's routing
// table: the directory of a file, or the ./data of tradeunit dev on etcd.
func localDataDir(spec string) (string, bool) {
	if strings.HasPrefix(spec, "etcd://") {
		if defaultRoutes() != spec {
			return "", false
		}
		dir, err := filepath.Abs("data")
		return dir, err == nil
	}
	dir, err := filepath.Abs(filepath.Dir(spec))
	return dir, err == nil
}

func runUnitDrain(ctx context.Context, args []string, stdout io.Writer) error {
	fs, af := newAdminFlags(unitDrainCmd)
	id := fs.Uint("unit", 0, "unit number")
	force := fs.Bool("force", false, "drain even the last unit of its partition that takes new orders")
	if err := fs.Parse(args); err != nil {
		return err
	}
	a, done, err := af.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	t, err := a.Drain(ctx, tradeunit.UnitID(*id), *force)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "unit %d drained: it takes no new orders; its orders are still served\n", *id)
	printRevision(stdout, t)
	return nil
}

func runUnitUndrain(ctx context.Context, args []string, stdout io.Writer) error {
	fs, af := newAdminFlags(unitUndrainCmd)
	id := fs.Uint("unit", 0, "unit number")
	if err := fs.Parse(args); err != nil {
		return err
	}
	a, done, err := af.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	t, err := a.Undrain(ctx, tradeunit.UnitID(*id))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "unit %d takes new orders again\n", *id)
	printRevision(stdout, t)
	return nil
}

func runUnitSet(ctx context.Context, args []string, stdout io.Writer) error {
	fs, af := newAdminFlags(unitSetCmd)
	id := fs.Uint("unit", 0, "unit number")
	partition := fs.String("partition", "", "move the unit's new orders to this partition")
	weight := fs.String("weight", "", "relative capacity for new orders")
	temperature := fs.String("temperature", "", "hot, warm or cold")
	available := fs.String("available", "", "true or false: mask a failed unit")
	var labels labelFlag
	fs.Var(&labels, "label", "KEY=VALUE label, repeatable; KEY= removes it")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var c admin.UnitChanges
	if *partition != "" {
		c.Partition = partition
	}
	if *weight != "" {
		w, err := strconv.ParseFloat(*weight, 64)
		if err != nil {
			return fmt.Errorf("--weight %q: want a number", *weight)
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
			return fmt.Errorf("--available %q: want true or false", *available)
		}
		c.Available = &b
	}
	c.Labels = labels.m
	a, done, err := af.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	t, err := a.SetUnit(ctx, tradeunit.UnitID(*id), c)
	if err != nil {
		return err
	}
	u, _ := t.Unit(tradeunit.UnitID(*id))
	fmt.Fprintf(stdout, "unit %d: partition %s, weight %g, temperature %s, available %v, labels %v\n",
		u.ID, u.Partition, u.Weight, u.Temperature, u.Available, u.Labels)
	printRevision(stdout, t)
	return nil
}

func runHistory(ctx context.Context, args []string, stdout io.Writer) error {
	fs, af := newAdminFlags(historyCmd)
	limit := fs.Int("limit", 20, "how many changes")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	a, done, err := af.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	h, err := a.History(ctx, *limit)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, h)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "REVISION\tTIME\tWHO\tWHAT")
	for _, c := range h {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", c.Revision, c.Time.Format("2006-01-02 15:04:05Z07:00"), c.Who, c.What)
	}
	return tw.Flush()
}

func runInit(ctx context.Context, args []string, stdout io.Writer) error {
	fs, af := newAdminFlags(initCmd)
	from := fs.String("from", "", "routing table file to store")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if !strings.HasPrefix(*af.routes, "etcd://") || *from == "" {
		return errors.New("want --routes etcd://HOST:PORT/PREFIX and --from FILE")
	}
	data, err := os.ReadFile(*from)
	if err != nil {
		return err
	}
	t, err := routing.Parse(data)
	if err != nil {
		return err
	}
	if err := routing.InitEtcd(ctx, *af.routes, t, routing.Change{Who: *af.who, What: "init from " + *from}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "stored %s (%d units, revision %d) in %s\n", *from, len(t.Units), t.Revision, *af.routes)
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
