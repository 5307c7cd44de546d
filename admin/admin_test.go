package admin_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tradeunit"
	"tradeunit/admin"
	"tradeunit/dsn"
	"tradeunit/routing"
)

// newAdmin returns an Admin over a routing file with units 1 (normal), 2
// (normal) and 3 (key).
func newAdmin(t *testing.T) (*admin.Admin, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "routes.json")
	table, top := &routing.Table{Revision: 1}, &routing.Topology{Revision: 1}
	for i, p := range []string{"normal", "normal", "key"} {
		id := tradeunit.UnitID(i + 1)
		table.Units = append(table.Units, routing.Unit{ID: id, Partition: p,
			LogicAddrs: []string{"127.0.0.1:9001"}, Available: true, AcceptNew: true})
		top.Set(id, routing.Storage{Primary: sqlite(filepath.Join(t.TempDir(), "x.db"))})
	}
	if err := routing.WriteFile(path, table); err != nil {
		t.Fatal(err)
	}
	if err := routing.WriteTopologyFile(routing.TopologyPath(path), top); err != nil {
		t.Fatal(err)
	}
	f, err := routing.OpenFile(path, routing.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	s, err := routing.OpenTopologyFile(routing.TopologyPath(path), routing.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &admin.Admin{Routes: f, Topology: s, Who: "test"}, path
}

func sqlite(path string) dsn.DSN { return dsn.MustParse("sqlite:" + path) }

func ptr[T any](v T) *T { return &v }

// TestBadInputChangesNothing: every refused command leaves the table as it was.
func TestBadInputChangesNothing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tests := []struct {
		name string
		run  func(a *admin.Admin) error
		want string // part of the message
	}{
		{"add existing number", func(a *admin.Admin) error {
			_, err := a.AddUnit(ctx, admin.NewUnit{ID: 2, Storage: routing.Storage{Primary: sqlite(filepath.Join(dir, "2.db"))}})
			return err
		}, "already exists"},
		{"add lower number", func(a *admin.Admin) error {
			a.Routes.Update(ctx, routing.Change{}, func(t *routing.Table) error { t.Units = t.Units[1:]; t.Normalize(); return nil })
			_, err := a.AddUnit(ctx, admin.NewUnit{ID: 1, Storage: routing.Storage{Primary: sqlite(filepath.Join(dir, "1.db"))}})
			return err
		}, "only grow"},
		{"add unit 0", func(a *admin.Admin) error {
			_, err := a.AddUnit(ctx, admin.NewUnit{ID: 0, Storage: routing.Storage{Primary: sqlite("x")}})
			return err
		}, "out of range"},
		{"add without storage", func(a *admin.Admin) error {
			_, err := a.AddUnit(ctx, admin.NewUnit{ID: 9})
			return err
		}, "storage"},
		{"add with storage that does not answer", func(a *admin.Admin) error {
			_, err := a.AddUnit(ctx, admin.NewUnit{ID: 9, Storage: routing.Storage{Primary: dsn.MustParse("mysql:root@tcp(127.0.0.1:1)/tradeunit_x")}})
			return err
		}, "does not answer"},
		{"add with bad partition", func(a *admin.Admin) error {
			_, err := a.AddUnit(ctx, admin.NewUnit{ID: 9, Partition: "Bad Name", LogicAddrs: []string{"127.0.0.1:1"},
				Storage: routing.Storage{Primary: sqlite(filepath.Join(dir, "9.db"))}})
			return err
		}, "partition"},
		{"drain unknown unit", func(a *admin.Admin) error { _, err := a.Drain(ctx, 42, false); return err }, "not in the routing table"},
		{"drain last hot unit of a partition", func(a *admin.Admin) error { _, err := a.Drain(ctx, 3, false); return err }, "last unit"},
		{"set nothing", func(a *admin.Admin) error { _, err := a.SetUnit(ctx, 1, admin.UnitChanges{}); return err }, "nothing to change"},
		{"set zero weight", func(a *admin.Admin) error {
			_, err := a.SetUnit(ctx, 1, admin.UnitChanges{Weight: ptr(0.0)})
			return err
		}, "weight"},
		{"set bad temperature", func(a *admin.Admin) error {
			_, err := a.SetUnit(ctx, 1, admin.UnitChanges{Temperature: ptr(routing.Temperature("tepid"))})
			return err
		}, "temperature"},
		{"set unknown unit", func(a *admin.Admin) error {
			_, err := a.SetUnit(ctx, 42, admin.UnitChanges{Weight: ptr(2.0)})
			return err
		}, "not in the routing table"},
		{"merchant to unknown partition", func(a *admin.Admin) error {
			_, err := a.SetMerchantPartition(ctx, "1900000001", "nowhere")
			return err
		}, "nowhere"},
		{"bad merchant id", func(a *admin.Admin) error { _, err := a.SetMerchantPartition(ctx, "a b", "key"); return err }, "mchid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, path := newAdmin(t)
			storageBefore, _ := os.ReadFile(routing.TopologyPath(path))
			err := tt.run(a)
			before, _ := os.ReadFile(path)
			if err == nil || tradeunit.ErrorCode(err) != tradeunit.CodeParamError || !bytes.Contains([]byte(err.Error()), []byte(tt.want)) {
				t.Fatalf("got %v, want a PARAM_ERROR mentioning %q", err, tt.want)
			}
			// The setup of "add lower number" changed the table itself; compare
			// with what it was just before the refused command.
			after, _ := os.ReadFile(path)
			if !bytes.Equal(before, after) {
				t.Fatal("a refused command changed the table")
			}
			if storageAfter, _ := os.ReadFile(routing.TopologyPath(path)); !bytes.Equal(storageBefore, storageAfter) {
				t.Fatal("a refused command changed the storage topology")
			}
		})
	}
}

func TestCommandsChangeTheTable(t *testing.T) {
	ctx := context.Background()
	a, _ := newAdmin(t)
	db4 := sqlite(filepath.Join(t.TempDir(), "unit-4.db"))
	if _, err := a.AddUnit(ctx, admin.NewUnit{ID: 4, Partition: "key", LogicAddrs: []string{"127.0.0.1:9004"}, Storage: routing.Storage{Primary: db4}}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(db4.Path); err != nil {
		t.Fatalf("unit add did not prepare the storage: %v", err)
	}
	if u, ok := a.Topology.Current().Unit(4); !ok || u.Primary != db4 {
		t.Fatalf("unit add: storage topology has %+v, want %s", u, db4)
	}
	if _, err := a.Drain(ctx, 3, false); err != nil { // unit 4 now serves partition key too
		t.Fatal(err)
	}
	if _, err := a.SetUnit(ctx, 4, admin.UnitChanges{Weight: ptr(2.5), Labels: map[string]string{"release": "v2"}}); err != nil {
		t.Fatal(err)
	}
	tbl, err := a.SetMerchantPartition(ctx, "1900000009", "key")
	if err != nil {
		t.Fatal(err)
	}
	u3, _ := tbl.Unit(3)
	u4, _ := tbl.Unit(4)
	if u3.AcceptNew || !u4.TakesNewOrders() || u4.Weight != 2.5 || u4.Labels["release"] != "v2" || tbl.PartitionOf("1900000009") != "key" {
		t.Fatalf("table after commands: unit 3 %+v, unit 4 %+v, merchants %v", u3, u4, tbl.Merchants)
	}
	if _, err := a.Undrain(ctx, 3); err != nil {
		t.Fatal(err)
	}
	h, err := a.History(ctx, 10)
	if err != nil || len(h) != 6 || h[0].What != "unit undrain 3" || h[4].What != "unit add 4" || h[0].Who != "test" ||
		h[5].Document != "storage" || !strings.HasPrefix(h[5].What, "unit add 4: storage") {
		t.Fatalf("history %+v, %v", h, err)
	}
	// A dev-managed unit: no addresses, registered unavailable.
	tbl, err = a.AddUnit(ctx, admin.NewUnit{ID: 5, Storage: routing.Storage{Primary: sqlite(filepath.Join(t.TempDir(), "5.db"))}})
	if err != nil {
		t.Fatal(err)
	}
	if u5, _ := tbl.Unit(5); u5.Available {
		t.Fatal("a unit without logic services was registered available")
	}
	if _, err := a.Undrain(ctx, 99); err == nil {
		t.Fatal("undrain of an unknown unit succeeded")
	}
}
