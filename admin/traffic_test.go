package admin_test

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"tradeunit"
	"tradeunit/admin"
	"tradeunit/routing"
)

func TestTrafficCommands(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	a, _ := newAdmin(t)
	a.Now = func() time.Time { return now }

	prev, tbl, err := a.Blacklist(ctx, 2, "disk swap", now.Add(time.Hour), false)
	if err != nil || prev != nil {
		t.Fatalf("blacklist: %v, previous %+v", err, prev)
	}
	e, active := tbl.Blacklisted(2, now)
	if !active || e.Reason != "disk swap" || e.By != "test" || !e.Since.Equal(now) || !e.Until.Equal(now.Add(time.Hour)) {
		t.Fatalf("entry %+v active %v", e, active)
	}
	if prev, _, err = a.Blacklist(ctx, 2, "longer", time.Time{}, false); err != nil || prev == nil || prev.Reason != "disk swap" {
		t.Fatalf("re-blacklist: %v, previous %+v", err, prev)
	}
	removed, tbl, err := a.Unblacklist(ctx, 2)
	if err != nil || removed.Reason != "longer" || len(tbl.Blacklist) != 0 {
		t.Fatalf("unblacklist: %v, removed %+v, left %+v", err, removed, tbl.Blacklist)
	}

	if _, err := a.SetUnit(ctx, 2, admin.UnitChanges{Labels: map[string]string{"release": "v2"}}); err != nil {
		t.Fatal(err)
	}
	for i, share := range []float64{0.01, 0.05, 0.5} {
		prev, carriers, tbl, err := a.SetCanary(ctx, "normal", &routing.Canary{Label: "release", Value: "v2", Share: share})
		if err != nil || !slices.Equal(carriers, []tradeunit.UnitID{2}) || tbl.Policy("normal").Canary.Share != share {
			t.Fatalf("canary step %v: %v, carriers %v", share, err, carriers)
		}
		if (i == 0) != (prev == nil) {
			t.Fatalf("canary step %v: previous %+v", share, prev)
		}
	}
	if prev, _, tbl, err := a.SetCanary(ctx, "normal", nil); err != nil || prev.Share != 0.5 || tbl.Policy("normal").Canary != nil {
		t.Fatalf("canary off: %v, previous %+v", err, prev)
	}
	if _, err := a.DeclarePartition(ctx, "prerelease"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.SetMerchantPartition(ctx, "1900000009", "prerelease"); err != nil {
		t.Fatal(err)
	}
	if _, tbl, err = a.SetPartitionPolicy(ctx, "key", routing.Spill, "normal"); err != nil || tbl.Policy("key").SpillTo != "normal" {
		t.Fatalf("spill policy: %v", err)
	}
	prevPolicy, tbl, err := a.SetPartitionPolicy(ctx, "key", routing.Refuse, "")
	if err != nil || prevPolicy.OnNoUnit != routing.Spill || tbl.Policy("key").OnNoUnit != routing.Refuse {
		t.Fatalf("refuse policy: %v, previous %+v", err, prevPolicy)
	}
	h, _ := a.History(ctx, 1)
	if len(h) != 1 || h[0].What != "partition key on-no-unit refuse" {
		t.Fatalf("history: %+v", h)
	}
}

func TestTrafficCommandsRefuseBadInput(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	tests := []struct {
		name  string
		setup func(a *admin.Admin)
		run   func(a *admin.Admin) error
		want  string
	}{
		{"blacklist unknown unit", nil, func(a *admin.Admin) error { _, _, err := a.Blacklist(ctx, 42, "x", time.Time{}, false); return err }, "not in the routing table"},
		{"blacklist without reason", nil, func(a *admin.Admin) error { _, _, err := a.Blacklist(ctx, 1, "", time.Time{}, false); return err }, "reason"},
		{"blacklist expiring in the past", nil, func(a *admin.Admin) error {
			_, _, err := a.Blacklist(ctx, 1, "x", now.Add(-time.Minute), false)
			return err
		}, "not in the future"},
		{"blacklist last unit of a partition", nil, func(a *admin.Admin) error { _, _, err := a.Blacklist(ctx, 3, "x", time.Time{}, false); return err }, "last unit"},
		{"unblacklist a unit not blacklisted", nil, func(a *admin.Admin) error { _, _, err := a.Unblacklist(ctx, 1); return err }, "not blacklisted"},
		{"canary share above 1", nil, func(a *admin.Admin) error {
			_, _, _, err := a.SetCanary(ctx, "normal", &routing.Canary{Label: "release", Value: "v2", Share: 1.5})
			return err
		}, "between 0 and 1"},
		{"canary of unknown partition", nil, func(a *admin.Admin) error {
			_, _, _, err := a.SetCanary(ctx, "vip", &routing.Canary{Label: "release", Value: "v2", Share: 0.1})
			return err
		}, "partition vip"},
		{"canary with a bad label", nil, func(a *admin.Admin) error {
			_, _, _, err := a.SetCanary(ctx, "normal", &routing.Canary{Label: "re lease", Value: "v2", Share: 0.1})
			return err
		}, "canary.label"},
		{"canary off when none", nil, func(a *admin.Admin) error { _, _, _, err := a.SetCanary(ctx, "normal", nil); return err }, "no canary"},
		{"spill into prerelease", func(a *admin.Admin) { a.DeclarePartition(ctx, "prerelease") }, func(a *admin.Admin) error {
			_, _, err := a.SetPartitionPolicy(ctx, "key", routing.Spill, "prerelease")
			return err
		}, "nothing may spill"},
		{"spill to itself", nil, func(a *admin.Admin) error {
			_, _, err := a.SetPartitionPolicy(ctx, "key", routing.Spill, "key")
			return err
		}, "itself"},
		{"unknown policy", nil, func(a *admin.Admin) error { _, _, err := a.SetPartitionPolicy(ctx, "key", "drop", ""); return err }, "on_no_unit"},
		{"declare existing", nil, func(a *admin.Admin) error { _, err := a.DeclarePartition(ctx, "key"); return err }, "exists"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, path := newAdmin(t)
			if tt.setup != nil {
				tt.setup(a)
			}
			before, _ := os.ReadFile(path)
			err := tt.run(a)
			if tradeunit.ErrorCode(err) != tradeunit.CodeParamError || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want a PARAM_ERROR mentioning %q", err, tt.want)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
				t.Fatal("a refused command changed the table")
			}
		})
	}
}
