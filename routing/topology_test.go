package routing

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"tradeunit"
	"tradeunit/dsn"
)

// db returns the DSN of a database on server host (127.0.0.HOST:3306), or
// of a SQLite file for host "file".
func db(t testing.TB, host string) dsn.DSN {
	t.Helper()
	s := "mysql:app@tcp(127.0.0." + host + ":3306)/u1"
	if host == "file" {
		s = "sqlite:unit-1.db"
	}
	d, err := dsn.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestTopologyValidate(t *testing.T) {
	tests := []struct {
		name    string
		entry   UnitStorage
		wantErr string
	}{
		{"primary", UnitStorage{Unit: 1, Storage: Storage{Primary: db(t, "1")}}, ""},
		{"no storage", UnitStorage{Unit: 1}, "unit 1: primary is empty"},
		{"bad unit", UnitStorage{Unit: 0, Storage: Storage{Primary: db(t, "1")}}, "units[0]"},
		{"failing over: no primary, replicas", UnitStorage{Unit: 1, Storage: Storage{Replicas: []dsn.DSN{db(t, "2")}, Fenced: []dsn.DSN{db(t, "1")}}}, ""},
		{"primary also a replica", UnitStorage{Unit: 1, Storage: Storage{Primary: db(t, "1"), Replicas: []dsn.DSN{db(t, "2"), db(t, "1")}}},
			"unit 1: replicas[1] names the same server as primary"},
		{"fenced also a replica", UnitStorage{Unit: 1, Storage: Storage{Primary: db(t, "1"), Replicas: []dsn.DSN{db(t, "2")}, Fenced: []dsn.DSN{db(t, "2")}}},
			"unit 1: fenced[0] names the same server as replicas[0]"},
		{"SQLite with a replica", UnitStorage{Unit: 1, Storage: Storage{Primary: db(t, "file"), Replicas: []dsn.DSN{db(t, "2")}}},
			"a SQLite file has no replicas"},
		{"server without a database", UnitStorage{Unit: 1, Storage: Storage{Primary: db(t, "1").ServerOnly()}}, "primary"},
		{"empty fenced", UnitStorage{Unit: 1, Storage: Storage{Primary: db(t, "1"), Fenced: []dsn.DSN{{}}}}, "unit 1: fenced[0] is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := (&Topology{Units: []UnitStorage{tt.entry}}).Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				return
			}
			if got := tradeunit.ErrorCode(err); got != tradeunit.CodeParamError {
				t.Errorf("got code %v, want %v", got, tradeunit.CodeParamError)
			}
			if got := tradeunit.ErrorMessage(err); !strings.Contains(got, tt.wantErr) {
				t.Errorf("got message %q, want it to contain %q", got, tt.wantErr)
			}
		})
	}
	twice := &Topology{Units: []UnitStorage{{Unit: 1, Storage: Storage{Primary: db(t, "1")}}, {Unit: 1, Storage: Storage{Primary: db(t, "2")}}}}
	if err := twice.Validate(); err == nil || !strings.Contains(err.Error(), "listed twice") {
		t.Errorf("a unit listed twice: got %v", err)
	}
}

func TestTopologyRoundTripAndClone(t *testing.T) {
	top := &Topology{Revision: 2, Units: []UnitStorage{
		{Unit: 3, Storage: Storage{Primary: db(t, "3"), Replicas: []dsn.DSN{db(t, "4")}}},
		{Unit: 1, Storage: Storage{Primary: db(t, "1")}},
	}}
	data, err := top.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseTopology(data)
	if err != nil {
		t.Fatal(err)
	}
	top.Normalize()
	if !reflect.DeepEqual(back, top) {
		t.Errorf("round trip: got %+v, want %+v", back, top)
	}
	if _, err := ParseTopology([]byte(`{"revision":1,"units":[],"passwords":{}}`)); err == nil {
		t.Error("an unknown field was accepted")
	}
	_, err = ParseTopology([]byte(`{"revision":1,"units":[{"unit":1,"primary":"mysql:app:hunter2@tcp(10.0.0.1:3306)/u1"}]}`))
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("a password in the topology: got %v, want a refusal that does not repeat it", err)
	}

	c := top.Clone()
	c.Units[1].Replicas[0] = db(t, "9")
	c.Set(7, Storage{Primary: db(t, "7")})
	c.Set(1, Storage{Primary: db(t, "8")})
	if u, _ := top.Unit(3); u.Replicas[0] != db(t, "4") {
		t.Errorf("changing the clone changed the original: %v", u.Replicas)
	}
	if _, ok := top.Unit(7); ok {
		t.Error("the original has the clone's new unit")
	}
	if u, ok := c.Unit(7); !ok || u.Primary != db(t, "7") {
		t.Errorf("Set added %+v, %v", u, ok)
	}
	if u, _ := c.Unit(1); u.Primary != db(t, "8") {
		t.Errorf("Set replaced unit 1 with %+v", u)
	}
}

// TestTopologyEntries: a StorageRef reaches a unit's or a shard's entry
// alike, to read it and to change it in place (LastFailover included), and
// a shard's last failover survives a round trip.
func TestTopologyEntries(t *testing.T) {
	top := &Topology{Revision: 1, Units: []UnitStorage{{Unit: 2, Storage: Storage{Primary: db(t, "2")}}}}
	top.SetShard(3, Storage{Primary: db(t, "3")})
	top.SetShard(1, Storage{Primary: db(t, "1")})
	top.Normalize()
	if got, want := top.Refs(), []StorageRef{UnitRef(2), ShardRef(1), ShardRef(3)}; !reflect.DeepEqual(got, want) {
		t.Errorf("Refs: got %v, want %v", got, want)
	}
	for _, tt := range []struct {
		ref  StorageRef
		want dsn.DSN
		name string
	}{{UnitRef(2), db(t, "2"), "unit 2"}, {ShardRef(3), db(t, "3"), "directory shard 3"}} {
		s, ok := top.Entry(tt.ref)
		if !ok || s.Primary != tt.want || tt.ref.String() != tt.name {
			t.Errorf("Entry(%s): got %+v, %v, want primary %v", tt.ref, s, ok, tt.want)
		}
	}
	for _, r := range []StorageRef{UnitRef(1), ShardRef(2), {Kind: "cache", ID: 2}} {
		if s, ok := top.Entry(r); ok {
			t.Errorf("Entry(%s): got %+v, want none", r, s)
		}
	}
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	c := top.Clone()
	s, _ := c.Entry(ShardRef(3))
	s.Primary = db(t, "9")
	c.SetLastFailover(ShardRef(3), at)
	c.SetLastFailover(UnitRef(2), at)
	if sh, _ := top.Shard(3); sh.Primary != db(t, "3") || !sh.LastFailover.IsZero() {
		t.Errorf("changing the clone changed the original: %+v", sh)
	}
	data, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseTopology(data)
	if err != nil {
		t.Fatal(err)
	}
	sh, _ := back.Shard(3)
	u, _ := back.Unit(2)
	if sh.Primary != db(t, "9") || !sh.LastFailover.Equal(at) || !u.LastFailover.Equal(at) {
		t.Errorf("round trip of a changed entry: got shard %+v, unit %+v", sh, u)
	}
}
