package admin_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"tradeunit"
	"tradeunit/admin"
	"tradeunit/routing"
)

// TestPlanEvacuation: the plan of a zone's evacuation moves every primary
// in it, with the replicas outside it as candidates; it is refused when a
// primary there has fewer than two replicas outside (one to promote, one
// to acknowledge), warns of a primary left with acknowledging replicas
// only in the zone and of units stranded there, and a refused plan changes
// nothing. (The handover itself runs against real MariaDB servers in
// package e2e.)
func TestPlanEvacuation(t *testing.T) {
	ctx := context.Background()
	zones := map[string]string{"127.0.0.1:2": "a", "127.0.0.1:3": "b", "127.0.0.1:4": "c", "127.0.0.1:5": "a"}
	set := func(db string, ports ...string) routing.Storage {
		st := routing.Storage{Primary: mysqlOn(ports[0], db), Zones: map[string]string{}}
		for _, p := range ports[1:] {
			st.Replicas = append(st.Replicas, mysqlOn(p, db))
		}
		for _, s := range st.Servers() {
			st.Zones[s] = zones[s]
		}
		return st
	}
	tests := []struct {
		name     string
		storage  map[tradeunit.UnitID]routing.Storage
		logic    map[tradeunit.UnitID]map[string]string // logic zones; units have 127.0.0.1:9001 and :9002
		moves    []string                               // "entry: candidates"
		refusals []string
		warnings []string
		stranded []tradeunit.UnitID
	}{
		{name: "primary in a, replicas in b and c: moves",
			storage: map[tradeunit.UnitID]routing.Storage{1: set("u1", "2", "3", "4")},
			moves:   []string{"unit 1: 127.0.0.1:3,127.0.0.1:4"}},
		{name: "primary elsewhere: nothing to move",
			storage: map[tradeunit.UnitID]routing.Storage{1: set("u1", "3", "2", "4")}},
		{name: "one replica outside: refused (none would acknowledge)",
			storage:  map[tradeunit.UnitID]routing.Storage{1: set("u1", "2", "5", "3")},
			moves:    []string{"unit 1: 127.0.0.1:3"},
			refusals: []string{"only one replica (127.0.0.1:3) is outside it"}},
		{name: "no replica outside: refused",
			storage:  map[tradeunit.UnitID]routing.Storage{1: set("u1", "2", "5")},
			moves:    []string{"unit 1: "},
			refusals: []string{"no replica of a known zone is outside it"}},
		{name: "primary outside, every replica in the zone: a warning",
			storage:  map[tradeunit.UnitID]routing.Storage{1: set("u1", "3", "2", "5")},
			warnings: []string{"every replica of its primary 127.0.0.1:3 is in zone a"}},
		{name: "units: one stranded, one with a replica elsewhere",
			storage:  map[tradeunit.UnitID]routing.Storage{1: set("u1", "3", "4", "2")},
			logic:    map[tradeunit.UnitID]map[string]string{1: {"127.0.0.1:9001": "a", "127.0.0.1:9002": "a"}, 2: {"127.0.0.1:9001": "a", "127.0.0.1:9002": "b"}},
			warnings: []string{"unit 1 has every logic replica in zone a"},
			stranded: []tradeunit.UnitID{1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, _ := newAdmin(t)
			if _, err := a.Topology.Update(ctx, routing.Change{}, func(top *routing.Topology) error {
				for id, st := range tt.storage {
					top.Set(id, st)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if _, err := a.Routes.Update(ctx, routing.Change{}, func(tbl *routing.Table) error {
				for i := range tbl.Units {
					u := &tbl.Units[i]
					u.LogicAddrs = []string{"127.0.0.1:9001", "127.0.0.1:9002"}
					u.LogicZones = tt.logic[u.ID]
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			plan, err := a.PlanEvacuation("a")
			if err != nil {
				t.Fatal(err)
			}
			var moves []string
			for _, m := range plan.Moves {
				moves = append(moves, m.Entry.String()+": "+strings.Join(m.Candidates, ","))
			}
			if !slices.Equal(moves, tt.moves) {
				t.Errorf("moves %q, want %q", moves, tt.moves)
			}
			contains(t, "refusals", plan.Refusals, tt.refusals)
			contains(t, "warnings", plan.Warnings, tt.warnings)
			if !slices.Equal(plan.Stranded, tt.stranded) {
				t.Errorf("stranded %v, want %v", plan.Stranded, tt.stranded)
			}
			if len(tt.refusals) > 0 {
				before, rev := a.Topology.Current().Revision, a.Routes.Current().Revision
				_, err := a.Evacuate(ctx, "a", admin.EvacuateOptions{Failover: admin.DefaultFailoverOptions()})
				if !tradeunit.IsCode(err, tradeunit.CodeInvalidRequest) || !strings.Contains(tradeunit.ErrorMessage(err), "nothing changed") {
					t.Fatalf("evacuate with refusals: got %v, want INVALID_REQUEST, nothing changed", err)
				}
				if a.Topology.Current().Revision != before || a.Routes.Current().Revision != rev {
					t.Fatal("a refused evacuation changed the table or the topology")
				}
			}
		})
	}
}

// TestEvacuateTrafficAndRestore: with no primary in the zone, evacuation
// only lists the zone in the routing table, and restore removes it; a bad
// or unknown zone, and restoring one not evacuated, are PARAM_ERRORs.
func TestEvacuateTrafficAndRestore(t *testing.T) {
	ctx := context.Background()
	a, _ := newAdmin(t)
	if _, err := a.SetUnit(ctx, 1, admin.UnitChanges{LogicZones: map[string]string{"127.0.0.1:9001": "a"}}); err != nil {
		t.Fatal(err)
	}
	for _, z := range []string{"A!", "nowhere"} {
		if _, err := a.PlanEvacuation(z); !tradeunit.IsCode(err, tradeunit.CodeParamError) {
			t.Fatalf("plan of zone %q: got %v, want PARAM_ERROR", z, err)
		}
	}
	if _, _, err := a.RestoreZone(ctx, "a", admin.DefaultFailoverOptions()); !tradeunit.IsCode(err, tradeunit.CodeParamError) {
		t.Fatalf("restore of a zone not evacuated: got %v, want PARAM_ERROR", err)
	}
	res, err := a.Evacuate(ctx, "a", admin.EvacuateOptions{Failover: admin.DefaultFailoverOptions()})
	if err != nil {
		t.Fatal(err)
	}
	tbl := a.Routes.Current()
	if !slices.Equal(tbl.EvacuatedZones, []string{"a"}) || res.Revision != tbl.Revision || !slices.Equal(res.Plan.Stranded, []tradeunit.UnitID{1}) {
		t.Fatalf("after evacuate: zones %v revision %d (table %d) stranded %v", tbl.EvacuatedZones, res.Revision, tbl.Revision, res.Plan.Stranded)
	}
	u, _ := tbl.Unit(1)
	if !tbl.OnlyInEvacuatedZones(u) {
		t.Fatal("unit 1, served only in the evacuated zone, still takes new orders")
	}
	if _, _, err := a.RestoreZone(ctx, "a", admin.DefaultFailoverOptions()); err != nil {
		t.Fatal(err)
	}
	if z := a.Routes.Current().EvacuatedZones; len(z) != 0 {
		t.Fatalf("after restore: evacuated zones %v", z)
	}
}

// contains checks that got has len(want) entries, each containing its want.
func contains(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s %q, want %d like %q", what, got, len(want), want)
	}
	for i := range got {
		if !strings.Contains(got[i], want[i]) {
			t.Fatalf("%s[%d] %q, want it to contain %q", what, i, got[i], want[i])
		}
	}
}
