package selection

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"tradeunit"
	"tradeunit/routing"
)

func standby(id tradeunit.UnitID, p string, weight float64) routing.Unit {
	u := hot(id, p)
	u.Standby, u.Weight = true, weight
	return u
}

// TestPickStandby: a partition's standby units take none of its new orders
// while it has a healthy regular unit, and take them all (shared by weight,
// ahead of the suspects) when it has none; a spill partition's standbys
// count as its own units.
func TestPickStandby(t *testing.T) {
	// key: regular units 3 and 4, standbys 5 (weight 1) and 6 (weight 3).
	// normal: regular units 1 and 2, standby 7. key spills to normal in the
	// spill cases.
	units := []routing.Unit{hot(1, "normal"), hot(2, "normal"), hot(3, "key"), hot(4, "key"),
		standby(5, "key", 1), standby(6, "key", 3), standby(7, "normal", 1)}
	failing := func(ids ...tradeunit.UnitID) map[tradeunit.UnitID]Observed {
		m := map[tradeunit.UnitID]Observed{}
		for _, id := range ids {
			m[id] = Observed{Failing: true, Failures: 3}
		}
		return m
	}
	tests := []struct {
		name    string
		spill   bool
		edit    func(us []routing.Unit, tbl *routing.Table) // changes the units (indexes = id-1) or the table
		passive map[tradeunit.UnitID]Observed
		// want: the allowed units of each position of a 3-unit pick.
		want       [][]tradeunit.UnitID
		wantRefuse string
		// wantShare, if set, is the share of first picks unit 6 must get
		// (by weight, 3 of 4).
		wantShare float64
	}{
		{name: "unused while a regular unit is eligible", want: [][]tradeunit.UnitID{{3, 4}, {3, 4}}},
		{name: "unused while one regular unit is left", edit: func(us []routing.Unit, _ *routing.Table) { us[2].Available = false },
			want: [][]tradeunit.UnitID{{4}}},
		{name: "unused while the others fail but one is healthy", passive: failing(3),
			want: [][]tradeunit.UnitID{{4}, {3}}},
		{name: "used when every regular unit is masked", edit: masked(3, 4),
			want: [][]tradeunit.UnitID{{5, 6}, {5, 6}}, wantShare: 0.75},
		{name: "used when drained, blacklisted or not hot", edit: func(us []routing.Unit, tbl *routing.Table) {
			us[2].AcceptNew = false
			us[3].Temperature = routing.Warm
			tbl.Blacklist = []routing.BlacklistEntry{{Unit: 3, Reason: "drain"}}
		}, want: [][]tradeunit.UnitID{{5, 6}, {5, 6}}, wantShare: 0.75},
		{name: "used ahead of failing regular units", passive: failing(3, 4),
			want: [][]tradeunit.UnitID{{5, 6}, {5, 6}, {3, 4}}},
		{name: "a failing standby comes last", passive: failing(3, 4, 6),
			want: [][]tradeunit.UnitID{{5}, {3, 4}, {3, 4}}},
		{name: "a blacklisted standby takes nothing", edit: func(us []routing.Unit, tbl *routing.Table) {
			masked(3, 4)(us, tbl)
			tbl.Blacklist = []routing.BlacklistEntry{{Unit: 6, Reason: "maintenance"}}
		}, want: [][]tradeunit.UnitID{{5}}},
		{name: "standbys before the spill", spill: true, edit: masked(3, 4),
			want: [][]tradeunit.UnitID{{5, 6}, {5, 6}, {1, 2}}},
		{name: "spill keeps its last attempt and skips the target's standby", spill: true,
			want: [][]tradeunit.UnitID{{3, 4}, {3, 4}, {1, 2}}},
		{name: "the spill target's standby counts as its unit", spill: true, edit: masked(1, 2, 3, 4, 5, 6),
			want: [][]tradeunit.UnitID{{7}}},
		{name: "refuse only when the standbys are gone too", edit: masked(3, 4, 5, 6),
			wantRefuse: "partition key has no unit that takes new orders"},
		{name: "another partition's standby is never used without a spill", edit: masked(3, 4, 5, 6, 1, 2),
			wantRefuse: "partition key has no unit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			us := slices.Clone(units)
			tbl := table(t, func(tbl *routing.Table) {
				tbl.Units = us
				tbl.Merchants = map[string]string{"key-m": "key"}
				if tt.spill {
					tbl.Partitions = map[string]routing.Partition{"key": {OnNoUnit: routing.Spill, SpillTo: "normal"}}
				}
				if tt.edit != nil {
					tt.edit(us, tbl)
				}
			})
			plan := Build(Inputs{Table: tbl, Now: now, Passive: tt.passive})
			for _, up := range plan.Units() {
				// Whether the key partition's standbys are in use: exactly
				// when its first pick is one of them.
				if up.Unit == 5 || up.Unit == 6 {
					if inUse := tt.wantRefuse == "" && slices.ContainsFunc(tt.want[0], func(u tradeunit.UnitID) bool { return u == 5 || u == 6 }); up.InUse != (inUse && up.Eligible) {
						t.Fatalf("standby %d: in use %v, want %v", up.Unit, up.InUse, inUse && up.Eligible)
					}
				}
			}
			const n = 4000
			first6 := 0
			for i := 0; i < n; i++ {
				got, err := plan.Pick(nil, "key-m", fmt.Sprint("o-", i), 3)
				if tt.wantRefuse != "" {
					if tradeunit.ErrorCode(err) != tradeunit.CodeNoUnitAvailable || !strings.Contains(tradeunit.ErrorMessage(err), tt.wantRefuse) {
						t.Fatalf("got %v, %v; want NO_UNIT_AVAILABLE %q", got, err, tt.wantRefuse)
					}
					return
				}
				if err != nil || len(got) != len(tt.want) {
					t.Fatalf("got %v, %v; want %d units", got, err, len(tt.want))
				}
				for j, u := range got {
					if !slices.Contains(tt.want[j], u) {
						t.Fatalf("got %v: position %d is unit %d, want one of %v", got, j, u, tt.want[j])
					}
				}
				if got[0] == 6 {
					first6++
				}
			}
			if tt.wantShare > 0 {
				if got := float64(first6) / n; math.Abs(got-tt.wantShare) > 0.03 {
					t.Fatalf("standby 6 first for %.3f of keys, want %.2f (by weight)", got, tt.wantShare)
				}
			}
		})
	}
}

// masked returns an edit that masks the units ids (unit i at index i-1).
func masked(ids ...tradeunit.UnitID) func([]routing.Unit, *routing.Table) {
	return func(us []routing.Unit, _ *routing.Table) {
		for _, id := range ids {
			us[id-1].Available = false
		}
	}
}

// TestPickStandbyLeavesRegularRanking: adding standbys changes no regular
// unit's ranking for any key, so a repeated create finds the unit it found
// before the standbys were added.
func TestPickStandbyLeavesRegularRanking(t *testing.T) {
	regular := []routing.Unit{hot(1, "normal"), hot(2, "normal"), hot(3, "normal")}
	regular[1].Weight = 2
	with := append(slices.Clone(regular), standby(4, "normal", 5), standby(5, "normal", 1))
	before := Build(Inputs{Table: table(t, nil, regular...), Now: now})
	after := Build(Inputs{Table: table(t, nil, with...), Now: now})
	for i := 0; i < 2000; i++ {
		key := fmt.Sprint("o-", i)
		if a, b := pick(t, before, "m", key, 3), pick(t, after, "m", key, 3); !slices.Equal(a, b) {
			t.Fatalf("key %s: got %v with standbys, want %v as without", key, b, a)
		}
	}
	for _, up := range after.Units() {
		if up.Standby != (up.Unit >= 4) || !up.Eligible {
			t.Fatalf("unit %d: standby %v eligible %v", up.Unit, up.Standby, up.Eligible)
		}
	}
}

func TestPickStandbyDoesNotAllocate(t *testing.T) {
	tbl := table(t, nil, hot(1, "normal"), standby(2, "normal", 1), standby(3, "normal", 2))
	plan := Build(Inputs{Table: tbl, Now: now, Passive: map[tradeunit.UnitID]Observed{1: {Failing: true}}})
	var buf [MaxPick]tradeunit.UnitID
	if allocs := testing.AllocsPerRun(1000, func() {
		if _, err := plan.Pick(buf[:0], "m", "order-000001", 3); err != nil {
			t.Fatal(err)
		}
	}); allocs != 0 {
		t.Errorf("Pick with standbys: %v allocations, want 0", allocs)
	}
}
