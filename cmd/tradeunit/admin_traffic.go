package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"tradeunit"
	"tradeunit/admin"
	"tradeunit/routing"
)

// The admin subcommands that steer new orders: blacklist, canary, labels,
// merchant partitions and partition policy.
var (
	blacklistCmd = &command{
		name:  "blacklist",
		usage: "--unit N --reason TEXT [--for 30m | --until RFC3339] [--force]",
		short: "stop a unit taking new orders (its orders are still served), until removed or expired",
	}
	unblacklistCmd = &command{
		name:  "unblacklist",
		usage: "--unit N",
		short: "let a blacklisted unit take new orders again",
	}
	canaryCmd = &command{
		name:  "canary",
		usage: "--partition P (--label KEY=VALUE --share S | --off)",
		short: "send share S (0..1) of a partition's new orders to its units labelled KEY=VALUE; one command per step",
	}
	labelCmd = &command{
		name:  "label",
		usage: "--unit N KEY=VALUE [KEY=...]",
		short: "set (or with an empty value remove) a unit's labels, e.g. its release for a canary",
	}
	unitPartitionCmd = &command{
		name:  "unit-partition",
		usage: "--unit N --partition P",
		short: "move a unit to a partition (for its new orders; its orders stay routable by number)",
	}
	merchantPartitionCmd = &command{
		name:  "merchant-partition",
		usage: "--mchid M --partition P",
		short: "send a merchant's new orders to a partition (normal: unmap it)",
	}
	partitionPolicyCmd = &command{
		name:  "partition-policy",
		usage: "--partition P --on-no-unit refuse|spill [--spill-to Q]",
		short: "what a partition's creates do when none of its units can take them",
	}
)

func init() {
	blacklistCmd.run = runBlacklist
	unblacklistCmd.run = runUnblacklist
	canaryCmd.run = runCanary
	labelCmd.run = runLabel
	unitPartitionCmd.run = runUnitPartition
	merchantPartitionCmd.run = runMerchantPartition
	partitionPolicyCmd.run = runPartitionPolicy
	adminCommands = append(adminCommands, blacklistCmd, unblacklistCmd, canaryCmd, labelCmd,
		unitPartitionCmd, merchantPartitionCmd, partitionPolicyCmd)
}

func runBlacklist(ctx context.Context, args []string, stdout io.Writer) error {
	fs, af := newAdminFlags(blacklistCmd)
	id := fs.Uint("unit", 0, "unit number")
	reason := fs.String("reason", "", "why (required; shown in the health checker's API)")
	forDur := fs.Duration("for", 0, "expire after this long (default: until unblacklisted)")
	until := fs.String("until", "", "expire at this time (RFC 3339)")
	force := fs.Bool("force", false, "blacklist even the last unit of its partition that takes new orders")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var expiry time.Time
	switch {
	case *forDur != 0 && *until != "":
		return errors.New("give --for or --until, not both")
	case *forDur < 0:
		return errors.New("--for must be positive")
	case *forDur > 0:
		expiry = time.Now().Add(*forDur).Truncate(time.Second)
	case *until != "":
		t, err := time.Parse(time.RFC3339, *until)
		if err != nil {
			return fmt.Errorf("--until: %w", err)
		}
		expiry = t
	}
	a, done, err := af.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	prev, t, err := a.Blacklist(ctx, tradeunit.UnitID(*id), *reason, expiry, *force)
	if err != nil {
		return err
	}
	e, _ := t.BlacklistEntryOf(tradeunit.UnitID(*id))
	if prev != nil {
		fmt.Fprintf(stdout, "unit %d was blacklisted: %s\n", *id, describeEntry(prev))
	}
	fmt.Fprintf(stdout, "unit %d blacklisted: %s\nit takes no new orders; its existing orders are still served\n", *id, describeEntry(e))
	printRevision(stdout, t)
	return nil
}

func describeEntry(e *routing.BlacklistEntry) string {
	s := fmt.Sprintf("%q by %s", e.Reason, e.By)
	if e.Until.IsZero() {
		return s + ", until removed"
	}
	return s + ", until " + e.Until.Format(time.RFC3339)
}

func runUnblacklist(ctx context.Context, args []string, stdout io.Writer) error {
	fs, af := newAdminFlags(unblacklistCmd)
	id := fs.Uint("unit", 0, "unit number")
	if err := fs.Parse(args); err != nil {
		return err
	}
	a, done, err := af.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	removed, t, err := a.Unblacklist(ctx, tradeunit.UnitID(*id))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "unit %d unblacklisted (was %s); it takes new orders again\n", *id, describeEntry(removed))
	printRevision(stdout, t)
	return nil
}

func runCanary(ctx context.Context, args []string, stdout io.Writer) error {
	fs, af := newAdminFlags(canaryCmd)
	partition := fs.String("partition", routing.DefaultPartition, "partition")
	label := fs.String("label", "", "release label the canary units carry, KEY=VALUE")
	share := fs.Float64("share", -1, "share of the partition's new orders for the canary units, 0..1")
	off := fs.Bool("off", false, "turn the canary off")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var c *routing.Canary
	switch {
	case *off && (*label != "" || *share >= 0):
		return errors.New("--off takes no --label or --share")
	case !*off:
		if *label == "" || *share < 0 {
			return errors.New("--label KEY=VALUE and --share S are required (or --off)")
		}
		k, v, err := parseLabel(*label)
		if err != nil {
			return err
		}
		c = &routing.Canary{Label: k, Value: v, Share: *share}
	}
	a, done, err := af.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	prev, carriers, t, err := a.SetCanary(ctx, *partition, c)
	if err != nil {
		return err
	}
	switch {
	case c == nil:
		fmt.Fprintf(stdout, "canary of partition %s off (was %s)\n", *partition, describeCanary(prev))
	default:
		fmt.Fprintf(stdout, "canary of partition %s: %s → %s\n", *partition, describeCanary(prev), describeCanary(c))
		if len(carriers) == 0 {
			fmt.Fprintf(stdout, "warning: no unit of partition %s carries %s=%s yet: its share goes to the other units (tradeunit admin label)\n",
				*partition, c.Label, c.Value)
		} else {
			fmt.Fprintf(stdout, "canary units: %v\n", carriers)
		}
	}
	printRevision(stdout, t)
	return nil
}

func describeCanary(c *routing.Canary) string {
	if c == nil {
		return "none"
	}
	return fmt.Sprintf("%s=%s at %g%%", c.Label, c.Value, c.Share*100)
}

func runLabel(ctx context.Context, args []string, stdout io.Writer) error {
	fs, af := newAdminFlags(labelCmd)
	id := fs.Uint("unit", 0, "unit number")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("give at least one KEY=VALUE")
	}
	labels := map[string]string{}
	for _, arg := range fs.Args() {
		k, v, err := parseLabel(arg)
		if err != nil {
			return err
		}
		labels[k] = v
	}
	a, done, err := af.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	t, err := a.SetUnit(ctx, tradeunit.UnitID(*id), admin.UnitChanges{Labels: labels})
	if err != nil {
		return err
	}
	u, _ := t.Unit(tradeunit.UnitID(*id))
	keys := make([]string, 0, len(u.Labels))
	for k := range u.Labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	fmt.Fprintf(stdout, "unit %d labels:", *id)
	for _, k := range keys {
		fmt.Fprintf(stdout, " %s=%s", k, u.Labels[k])
	}
	fmt.Fprintln(stdout)
	printRevision(stdout, t)
	return nil
}

func runUnitPartition(ctx context.Context, args []string, stdout io.Writer) error {
	fs, af := newAdminFlags(unitPartitionCmd)
	id := fs.Uint("unit", 0, "unit number")
	partition := fs.String("partition", "", "partition, e.g. key, normal, prerelease")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *partition == "" {
		return errors.New("--partition is required")
	}
	a, done, err := af.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	before, ok := a.Routes.Current().Unit(tradeunit.UnitID(*id))
	was := ""
	if ok {
		was = before.Partition
	}
	t, err := a.SetUnit(ctx, tradeunit.UnitID(*id), admin.UnitChanges{Partition: partition})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "unit %d: partition %s (was %s)\n", *id, *partition, was)
	printRevision(stdout, t)
	return nil
}

func runMerchantPartition(ctx context.Context, args []string, stdout io.Writer) error {
	fs, af := newAdminFlags(merchantPartitionCmd)
	mchid := fs.String("mchid", "", "merchant id")
	partition := fs.String("partition", "", "partition of its new orders (normal unmaps it)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *partition == "" {
		return errors.New("--partition is required")
	}
	a, done, err := af.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	before := a.Routes.Current().PartitionOf(*mchid)
	t, err := a.SetMerchantPartition(ctx, *mchid, *partition)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "merchant %s: new orders go to partition %s (was %s); its existing orders stay where they are\n",
		*mchid, t.PartitionOf(*mchid), before)
	printRevision(stdout, t)
	return nil
}

func runPartitionPolicy(ctx context.Context, args []string, stdout io.Writer) error {
	fs, af := newAdminFlags(partitionPolicyCmd)
	partition := fs.String("partition", "", "partition")
	onNoUnit := fs.String("on-no-unit", "", "refuse (NO_UNIT_AVAILABLE) or spill")
	spillTo := fs.String("spill-to", "", "partition that takes the creates when on-no-unit is spill")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *partition == "" || *onNoUnit == "" {
		return errors.New("--partition and --on-no-unit are required")
	}
	a, done, err := af.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	prev, t, err := a.SetPartitionPolicy(ctx, *partition, routing.NoUnitPolicy(*onNoUnit), *spillTo)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "partition %s with no unit left: %s (was %s)\n", *partition, describePolicy(t.Policy(*partition)), describePolicy(prev))
	printRevision(stdout, t)
	return nil
}

func describePolicy(p routing.Partition) string {
	if p.OnNoUnit == routing.Spill {
		return "spill to " + p.SpillTo
	}
	return "refuse"
}
