package admin_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"tradeunit"
	"tradeunit/admin"
	"tradeunit/dsn"
	"tradeunit/routing"
)

func TestZoneWarnings(t *testing.T) {
	a, b := "10.0.1.1:7000", "10.0.2.1:7000"
	p, r := dsn.MustParse("mysql:app@tcp(10.0.1.5:3306)/u1"), dsn.MustParse("mysql:app@tcp(10.0.2.5:3306)/u1")
	f := dsn.MustParse("mysql:app@tcp(10.0.3.5:3306)/u1")
	storage := func(zones map[string]string) *routing.Storage {
		return &routing.Storage{Primary: p, Replicas: []dsn.DSN{r}, Fenced: []dsn.DSN{f}, Zones: zones}
	}
	tests := []struct {
		name    string
		zones   map[string]string // logic
		storage *routing.Storage
		want    []string // a part of each warning, in order
	}{
		{"no zones", nil, storage(nil), nil},
		{"logic spread", map[string]string{a: "x", b: "y"}, nil, nil},
		{"logic in one zone", map[string]string{a: "x", b: "x"}, nil, []string{"every logic replica (2) is in zone x"}},
		{"one zone unknown", map[string]string{a: "x"}, nil, nil},
		{"storage spread", nil, storage(map[string]string{"10.0.1.5:3306": "x", "10.0.2.5:3306": "y"}), nil},
		{"storage in one zone", nil, storage(map[string]string{"10.0.1.5:3306": "x", "10.0.2.5:3306": "x", "10.0.3.5:3306": "y"}),
			[]string{"storage primary and every replica are in zone x"}},
		{"both", map[string]string{a: "x", b: "x"}, storage(map[string]string{"10.0.1.5:3306": "y", "10.0.2.5:3306": "y"}),
			[]string{"zone x", "zone y"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := &routing.Unit{ID: 1, LogicAddrs: []string{a, b}, LogicZones: tt.zones}
			got := admin.ZoneWarnings(u, tt.storage)
			if len(got) != len(tt.want) {
				t.Fatalf("got %q, want %d warnings like %q", got, len(tt.want), tt.want)
			}
			for i := range got {
				if !strings.Contains(got[i], tt.want[i]) {
					t.Fatalf("warning %d: got %q, want it to contain %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}

// TestSetStandbyAndZones: unit set and unit add write standby and zones to
// the table and the topology; units shows them, with its warnings; a zone
// for an address the unit lacks is refused.
func TestSetStandbyAndZones(t *testing.T) {
	ctx := context.Background()
	a, _ := newAdmin(t)
	if _, err := a.SetUnit(ctx, 1, admin.UnitChanges{Standby: ptr(true), LogicZones: map[string]string{"127.0.0.1:9001": "room-a"}}); err != nil {
		t.Fatal(err)
	}
	st, _ := a.Topology.Current().Unit(1)
	server := st.Primary.Server()
	if _, err := a.SetUnit(ctx, 1, admin.UnitChanges{StorageZones: map[string]string{server: "room-a"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.SetUnit(ctx, 2, admin.UnitChanges{LogicZones: map[string]string{"127.0.0.9:9001": "room-a"}}); !tradeunit.IsCode(err, tradeunit.CodeParamError) ||
		!strings.Contains(tradeunit.ErrorMessage(err), "not one of the unit's logic_addrs") {
		t.Fatalf("zone of an unknown address: got %v, want PARAM_ERROR", err)
	}
	if _, err := a.SetUnit(ctx, 2, admin.UnitChanges{StorageZones: map[string]string{"/nowhere.db": "room-a"}}); !tradeunit.IsCode(err, tradeunit.CodeParamError) {
		t.Fatalf("zone of an unknown server: got %v, want PARAM_ERROR", err)
	}
	if _, err := a.AddUnit(ctx, admin.NewUnit{ID: 4, Partition: "key", LogicAddrs: []string{"127.0.0.1:9004"}, Standby: true,
		LogicZones: map[string]string{"127.0.0.1:9004": "room-b"},
		Storage:    routing.Storage{Primary: sqlite(filepath.Join(t.TempDir(), "4.db"))}}); err != nil {
		t.Fatal(err)
	}
	views, err := a.Units(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	byUnit := map[tradeunit.UnitID]admin.UnitView{}
	for _, v := range views {
		byUnit[v.Unit] = v
	}
	one, four := byUnit[1], byUnit[4]
	if !one.Standby || one.LogicZones["127.0.0.1:9001"] != "room-a" || one.StorageZones[server] != "room-a" || len(one.Warnings) != 2 {
		t.Fatalf("unit 1: got %+v, want a standby in room-a with two warnings", one)
	}
	if !four.Standby || four.LogicZones["127.0.0.1:9004"] != "room-b" || !slices.ContainsFunc(four.Warnings, func(w string) bool {
		return strings.Contains(w, "logic replica")
	}) {
		t.Fatalf("unit 4: got %+v, want a standby in room-b warned of its one logic replica", four)
	}
	if byUnit[2].Standby || len(byUnit[2].Warnings) != 0 {
		t.Fatalf("unit 2: got %+v, want no standby and no warning", byUnit[2])
	}
	if _, err := a.SetUnit(ctx, 1, admin.UnitChanges{Standby: ptr(false), LogicZones: map[string]string{"127.0.0.1:9001": ""}}); err != nil {
		t.Fatal(err)
	}
	if u, _ := a.Routes.Current().Unit(1); u.Standby || u.LogicZones != nil {
		t.Fatalf("unit 1 after clearing: got standby %v zones %v", u.Standby, u.LogicZones)
	}
}
