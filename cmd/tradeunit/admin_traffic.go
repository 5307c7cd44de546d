package main

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"

	"tradeunit"
	"tradeunit/admin"
	"tradeunit/daemon"
	"tradeunit/routing"
)

// The admin commands that steer new orders: blacklist, canary, labels,
// merchant partitions and partition policy.
var (
	blacklistCmd = &command{
		name:  "blacklist",
		usage: "--unit N --reason TEXT [--for 30m | --until RFC3339] [--force]",
		short: "stop a unit taking new orders (its orders are still served), until removed or expired",
		run:   runBlacklist,
	}
	unblacklistCmd = &command{
		name:  "unblacklist",
		usage: "--unit N",
		short: "let a blacklisted unit take new orders again",
		run:   runUnblacklist,
	}
	canaryCmd = &command{
		name:  "canary",
		usage: "--partition P (--label KEY=VALUE --share S | --off)",
		short: "send share S (0..1) of a partition's new orders to its units labelled KEY=VALUE; one command per step",
		run:   runCanary,
	}
	labelCmd = &command{
		name:  "label",
		usage: "--unit N KEY=VALUE [KEY=VALUE...]",
		short: "set (or with an empty value remove) a unit's labels, e.g. its release for a canary",
		run:   runLabel,
	}
	unitPartitionCmd = &command{
		name:  "unit-partition",
		usage: "--unit N --partition P",
		short: "move a unit to a partition (for its new orders; its orders stay routable by number)",
		run:   runUnitPartition,
	}
	merchantPartitionCmd = &command{
		name:  "merchant-partition",
		usage: "--mchid M --partition P",
		short: "send a merchant's new orders to a partition (normal: unmap it)",
		run:   runMerchantPartition,
	}
	partitionPolicyCmd = &command{
		name:  "partition-policy",
		usage: "--partition P --on-no-unit refuse|spill [--spill-to Q]",
		short: "what a partition's creates do when none of its units can take them",
		run:   runPartitionPolicy,
	}
)

// unitFlag adds the --unit flag every unit command takes.
func unitFlag(fs *flag.FlagSet) *tradeunit.UnitID {
	var id tradeunit.UnitID
	daemon.UnitVar(fs, &id, "unit", "unit number")
	return &id
}

func runBlacklist(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	id := unitFlag(fs)
	reason := fs.String("reason", "", "why (required; shown in the health checker's API)")
	forDur := fs.Duration("for", 0, "expire after this long (default: until unblacklisted)")
	until := fs.String("until", "", "expire at this time (RFC 3339)")
	force := fs.Bool("force", false, "blacklist even the last unit of its partition that takes new orders")
	return adminChange(ctx, e, fs, args, func(a *admin.Admin) (*routing.Table, string, error) {
		var expiry time.Time
		switch {
		case *forDur != 0 && *until != "":
			return nil, "", usageErrorf("give --for or --until, not both")
		case *forDur < 0:
			return nil, "", usageErrorf("--for must be positive")
		case *forDur > 0:
			expiry = time.Now().Add(*forDur).Truncate(time.Second)
		case *until != "":
			t, err := time.Parse(time.RFC3339, *until)
			if err != nil {
				return nil, "", usageErrorf("--until: %v", err)
			}
			expiry = t
		}
		prev, t, err := a.Blacklist(ctx, *id, *reason, expiry, *force)
		if err != nil {
			return nil, "", err
		}
		entry, _ := t.BlacklistEntryOf(*id)
		msg := fmt.Sprintf("unit %d blacklisted: %s\nit takes no new orders; its existing orders are still served", *id, describeEntry(entry))
		if prev != nil {
			msg = fmt.Sprintf("unit %d was blacklisted: %s\n", *id, describeEntry(prev)) + msg
		}
		return t, msg, nil
	})
}

func describeEntry(e *routing.BlacklistEntry) string {
	s := fmt.Sprintf("%q by %s", e.Reason, e.By)
	if e.Until.IsZero() {
		return s + ", until removed"
	}
	return s + ", until " + e.Until.Format(time.RFC3339)
}

func runUnblacklist(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	id := unitFlag(fs)
	return adminChange(ctx, e, fs, args, func(a *admin.Admin) (*routing.Table, string, error) {
		removed, t, err := a.Unblacklist(ctx, *id)
		if err != nil {
			return nil, "", err
		}
		return t, fmt.Sprintf("unit %d unblacklisted (was %s); it takes new orders again", *id, describeEntry(removed)), nil
	})
}

func runCanary(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	partition := fs.String("partition", routing.DefaultPartition, "partition")
	label := fs.String("label", "", "release label the canary units carry, KEY=VALUE")
	share := fs.Float64("share", -1, "share of the partition's new orders for the canary units, 0..1")
	off := fs.Bool("off", false, "turn the canary off")
	return adminChange(ctx, e, fs, args, func(a *admin.Admin) (*routing.Table, string, error) {
		var c *routing.Canary
		switch {
		case *off && (*label != "" || *share >= 0):
			return nil, "", usageErrorf("--off takes no --label or --share")
		case !*off:
			if *label == "" || *share < 0 {
				return nil, "", usageErrorf("--label KEY=VALUE and --share S are required (or --off)")
			}
			k, v, err := parseLabel(*label)
			if err != nil {
				return nil, "", err
			}
			c = &routing.Canary{Label: k, Value: v, Share: *share}
		}
		prev, carriers, t, err := a.SetCanary(ctx, *partition, c)
		if err != nil {
			return nil, "", err
		}
		if c == nil {
			return t, fmt.Sprintf("canary of partition %s off (was %s)", *partition, describeCanary(prev)), nil
		}
		msg := fmt.Sprintf("canary of partition %s: %s → %s\n", *partition, describeCanary(prev), describeCanary(c))
		if len(carriers) == 0 {
			msg += fmt.Sprintf("warning: no unit of partition %s carries %s=%s yet: its share goes to the other units (tradeunit admin label)",
				*partition, c.Label, c.Value)
		} else {
			msg += fmt.Sprintf("canary units: %v", carriers)
		}
		return t, msg, nil
	})
}

func describeCanary(c *routing.Canary) string {
	if c == nil {
		return "none"
	}
	return fmt.Sprintf("%s=%s at %g%%", c.Label, c.Value, c.Share*100)
}

func runLabel(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	id := unitFlag(fs)
	f := newAdminFlags(fs)
	if err := parse(e, fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageErrorf("give at least one KEY=VALUE")
	}
	labels := map[string]string{}
	for _, arg := range fs.Args() {
		k, v, err := parseLabel(arg)
		if err != nil {
			return usageErrorf("%v", err)
		}
		labels[k] = v
	}
	a, done, err := f.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	t, err := a.SetUnit(ctx, *id, admin.UnitChanges{Labels: labels})
	if err != nil {
		return err
	}
	u, _ := t.Unit(*id)
	var pairs []string
	for k, v := range u.Labels {
		pairs = append(pairs, k+"="+v)
	}
	slices.Sort(pairs)
	fmt.Fprintf(e.stdout, "unit %d labels: %s\n", *id, strings.Join(pairs, " "))
	printRevision(e.stdout, t)
	return nil
}

func runUnitPartition(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	id := unitFlag(fs)
	partition := fs.String("partition", "", "partition, e.g. key, normal, prerelease (required)")
	return adminChange(ctx, e, fs, args, func(a *admin.Admin) (*routing.Table, string, error) {
		if *partition == "" {
			return nil, "", usageErrorf("--partition is required")
		}
		was := ""
		if before, ok := a.Routes.Current().Unit(*id); ok {
			was = before.Partition
		}
		t, err := a.SetUnit(ctx, *id, admin.UnitChanges{Partition: partition})
		if err != nil {
			return nil, "", err
		}
		return t, fmt.Sprintf("unit %d: partition %s (was %s)", *id, *partition, was), nil
	})
}

func runMerchantPartition(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	mchid := fs.String("mchid", "", "merchant id (required)")
	partition := fs.String("partition", "", "partition of its new orders; normal unmaps it (required)")
	return adminChange(ctx, e, fs, args, func(a *admin.Admin) (*routing.Table, string, error) {
		if *mchid == "" || *partition == "" {
			return nil, "", usageErrorf("--mchid and --partition are required")
		}
		before := a.Routes.Current().PartitionOf(*mchid)
		t, err := a.SetMerchantPartition(ctx, *mchid, *partition)
		if err != nil {
			return nil, "", err
		}
		return t, fmt.Sprintf("merchant %s: new orders go to partition %s (was %s); its existing orders stay where they are",
			*mchid, t.PartitionOf(*mchid), before), nil
	})
}

func runPartitionPolicy(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	partition := fs.String("partition", "", "partition (required)")
	onNoUnit := fs.String("on-no-unit", "", "refuse (NO_UNIT_AVAILABLE) or spill (required)")
	spillTo := fs.String("spill-to", "", "partition that takes the creates when on-no-unit is spill")
	return adminChange(ctx, e, fs, args, func(a *admin.Admin) (*routing.Table, string, error) {
		if *partition == "" || *onNoUnit == "" {
			return nil, "", usageErrorf("--partition and --on-no-unit are required")
		}
		prev, t, err := a.SetPartitionPolicy(ctx, *partition, routing.NoUnitPolicy(*onNoUnit), *spillTo)
		if err != nil {
			return nil, "", err
		}
		return t, fmt.Sprintf("partition %s with no unit left: %s (was %s)", *partition, describePolicy(t.Policy(*partition)), describePolicy(prev)), nil
	})
}

func describePolicy(p routing.Partition) string {
	if p.OnNoUnit == routing.Spill {
		return "spill to " + p.SpillTo
	}
	return "refuse"
}
