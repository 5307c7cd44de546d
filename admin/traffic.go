package admin

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"tradeunit"
	"tradeunit/routing"
)

// Blacklist blocks a unit from taking new orders, with a reason and, unless
// until is zero, an expiry; calls for its existing orders go on. Every proxy
// honours it within a second (they reload the table within 200 ms), and the
// health checker's API shows it. Blacklisting the last unit of a partition
// that takes new orders is refused unless force is set. It returns the entry
// it replaced, if any.
func (a *Admin) Blacklist(ctx context.Context, id tradeunit.UnitID, reason string, until time.Time, force bool) (*routing.BlacklistEntry, *routing.Table, error) {
	now := a.now().UTC().Truncate(time.Second)
	if !until.IsZero() && !until.After(now) {
		return nil, nil, paramErrorf("blacklist of unit %d: expiry %s is not in the future", id, until.Format(time.RFC3339))
	}
	var prev *routing.BlacklistEntry
	what := fmt.Sprintf("blacklist %d: %s", id, reason)
	if !until.IsZero() {
		what += " (until " + until.UTC().Format(time.RFC3339) + ")"
	}
	t, err := a.update(ctx, what, func(t *routing.Table) error {
		u, err := unit(t, id)
		if err != nil {
			return err
		}
		prev = t.SetBlacklist(routing.BlacklistEntry{Unit: id, Reason: reason, By: a.change("").Who, Since: now, Until: until.UTC()})
		if !force && u.TakesNewOrders() && !anyOpen(t, u.Partition, now) {
			return paramErrorf("unit %d is the last unit of partition %s that takes new orders; add or undrain another first (or --force)", id, u.Partition)
		}
		return nil
	})
	return prev, t, err
}

// Unblacklist lets a blacklisted unit take new orders again and returns the
// entry it removed.
func (a *Admin) Unblacklist(ctx context.Context, id tradeunit.UnitID) (*routing.BlacklistEntry, *routing.Table, error) {
	var removed *routing.BlacklistEntry
	t, err := a.update(ctx, fmt.Sprintf("unblacklist %d", id), func(t *routing.Table) error {
		if _, err := unit(t, id); err != nil {
			return err
		}
		if removed = t.RemoveBlacklist(id); removed == nil {
			return paramErrorf("unit %d is not blacklisted", id)
		}
		return nil
	})
	return removed, t, err
}

// anyOpen reports whether a unit of the partition takes new orders and is
// not blacklisted at now.
func anyOpen(t *routing.Table, partition string, now time.Time) bool {
	for i := range t.Units {
		u := &t.Units[i]
		if _, blocked := t.Blacklisted(u.ID, now); u.Partition == partition && u.TakesNewOrders() && !blocked {
			return true
		}
	}
	return false
}

// SetCanary sends share (0..1) of a partition's new orders to its units
// labelled label=value; a nil canary turns it off. A release is rolled out
// by raising the share one step per call. It returns the canary it
// replaced, and the units that carry the label (a canary no unit carries
// yet sends nothing anywhere else: its share goes to the other units).
func (a *Admin) SetCanary(ctx context.Context, partition string, c *routing.Canary) (prev *routing.Canary, carriers []tradeunit.UnitID, t *routing.Table, err error) {
	what := "canary " + partition + " off"
	if c != nil {
		if math.IsNaN(c.Share) || c.Share < 0 || c.Share > 1 {
			return nil, nil, nil, paramErrorf("canary share must be between 0 and 1, got %v", c.Share)
		}
		what = fmt.Sprintf("canary %s %s=%s share %g", partition, c.Label, c.Value, c.Share)
	}
	t, err = a.update(ctx, what, func(t *routing.Table) error {
		if !knownPartition(t, partition) {
			return paramErrorf("partition %s has no unit and no policy", partition)
		}
		policy := t.Policy(partition)
		prev = policy.Canary
		if c == nil && prev == nil {
			return paramErrorf("partition %s has no canary", partition)
		}
		if c != nil {
			cc := *c
			policy.Canary = &cc
		} else {
			policy.Canary = nil
		}
		setPolicy(t, partition, policy)
		return nil
	})
	if err != nil {
		return nil, nil, nil, err
	}
	if c != nil {
		for i := range t.Units {
			if u := &t.Units[i]; u.Partition == partition && c.Matches(u) {
				carriers = append(carriers, u.ID)
			}
		}
	}
	return prev, carriers, t, nil
}

// SetPartitionPolicy sets what a partition's creates do when it has no unit
// that can take them: refuse (NO_UNIT_AVAILABLE), or spill to spillTo. It
// returns the policy it replaced.
func (a *Admin) SetPartitionPolicy(ctx context.Context, partition string, onNoUnit routing.NoUnitPolicy, spillTo string) (routing.Partition, *routing.Table, error) {
	var prev routing.Partition
	what := fmt.Sprintf("partition %s on-no-unit %s", partition, onNoUnit)
	if spillTo != "" {
		what += " to " + spillTo
	}
	t, err := a.update(ctx, what, func(t *routing.Table) error {
		if !knownPartition(t, partition) {
			return paramErrorf("partition %s has no unit and no policy", partition)
		}
		prev = t.Policy(partition)
		next := prev
		next.OnNoUnit, next.SpillTo = onNoUnit, spillTo
		setPolicy(t, partition, next)
		return nil // the table's validation checks the policy
	})
	return prev, t, err
}

// DeclarePartition makes a partition known before it has units, so that
// merchants can be mapped to it.
func (a *Admin) DeclarePartition(ctx context.Context, partition string) (*routing.Table, error) {
	return a.update(ctx, "partition declare "+partition, func(t *routing.Table) error {
		if knownPartition(t, partition) {
			return paramErrorf("partition %s exists", partition)
		}
		setPolicy(t, partition, routing.Partition{})
		return nil
	})
}

func knownPartition(t *routing.Table, p string) bool {
	for _, name := range t.PartitionNames() {
		if name == p {
			return true
		}
	}
	return false
}

// setPolicy stores a partition's policy; an empty policy is kept only for
// a partition without units, which it declares.
func setPolicy(t *routing.Table, partition string, p routing.Partition) {
	if t.Partitions == nil {
		t.Partitions = map[string]routing.Partition{}
	}
	hasUnits := false
	for i := range t.Units {
		hasUnits = hasUnits || t.Units[i].Partition == partition
	}
	if p == (routing.Partition{}) && hasUnits {
		delete(t.Partitions, partition)
		return
	}
	t.Partitions[partition] = p
}

// change describes a change that does what.
func (a *Admin) change(what string) routing.Change {
	who := strings.TrimSpace(a.Who)
	if who == "" {
		who = "admin"
	}
	return routing.Change{Who: who, Subject: a.Subject, Why: a.Why, What: what}
}
