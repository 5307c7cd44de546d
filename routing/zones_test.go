package routing

import (
	"slices"
	"strings"
	"testing"

	"tradeunit"
	"tradeunit/dsn"
)

func TestUnitZonesValidate(t *testing.T) {
	addrs := []string{"10.0.1.1:7001", "10.0.2.1:7001"}
	tests := []struct {
		name    string
		zones   map[string]string
		wantErr string
	}{
		{"no zones", nil, ""},
		{"every replica", map[string]string{addrs[0]: "room-a", addrs[1]: "room_b"}, ""},
		{"some replicas", map[string]string{addrs[1]: "b2"}, ""},
		{"unknown address", map[string]string{"10.0.9.9:7001": "a"}, `logic_zones["10.0.9.9:7001"]: not one of the unit's logic_addrs`},
		{"upper case", map[string]string{addrs[0]: "RoomA"}, `zone "RoomA" must match`},
		{"empty zone", map[string]string{addrs[0]: ""}, `zone "" must match`},
		{"too long", map[string]string{addrs[0]: strings.Repeat("z", 33)}, "must match [a-z0-9_-]{1,32}"},
		{"space", map[string]string{addrs[0]: "room a"}, `zone "room a" must match`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tbl := &Table{Units: []Unit{{ID: 1, LogicAddrs: addrs, Available: true, AcceptNew: true, LogicZones: tt.zones}}}
			tbl.Normalize()
			checkParamError(t, tbl.Validate(), tt.wantErr)
		})
	}
}

func TestEvacuatedZonesValidate(t *testing.T) {
	tbl := &Table{EvacuatedZones: []string{"b", "a", "b"}}
	tbl.Normalize()
	checkParamError(t, tbl.Validate(), "")
	if !slices.Equal(tbl.EvacuatedZones, []string{"a", "b"}) {
		t.Fatalf("normalized evacuated zones %v, want [a b]", tbl.EvacuatedZones)
	}
	data, err := tbl.Clone().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if back, err := Parse(data); err != nil || !slices.Equal(back.EvacuatedZones, tbl.EvacuatedZones) {
		t.Fatalf("clone, marshal and parse: got %v (%v), want %v", back, err, tbl.EvacuatedZones)
	}
	tbl = &Table{EvacuatedZones: []string{"Room A"}}
	checkParamError(t, tbl.Validate(), `evacuated_zones: zone "Room A" must match`)
}

func TestStorageZonesValidate(t *testing.T) {
	st := Storage{Primary: db(t, "1"), Replicas: []dsn.DSN{db(t, "2")}, Fenced: []dsn.DSN{db(t, "3")}}
	tests := []struct {
		name    string
		zones   map[string]string
		wantErr string
	}{
		{"no zones", nil, ""},
		{"every role", map[string]string{"127.0.0.1:3306": "a", "127.0.0.2:3306": "b", "127.0.0.3:3306": "a"}, ""},
		{"unknown server", map[string]string{"127.0.0.9:3306": "a"}, `unit 1: zones["127.0.0.9:3306"]: not the server of`},
		{"a DSN, not a server", map[string]string{"mysql:app@tcp(127.0.0.1:3306)/u1": "a"}, "not the server of"},
		{"bad zone", map[string]string{"127.0.0.2:3306": "B!"}, `zone "B!" must match`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := st.clone()
			s.Zones = tt.zones
			checkParamError(t, (&Topology{Units: []UnitStorage{{Unit: 1, Storage: s}}}).Validate(), tt.wantErr)
		})
	}
}

func checkParamError(t *testing.T, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("got %v, want no error", err)
		}
		return
	}
	if got := tradeunit.ErrorCode(err); got != tradeunit.CodeParamError {
		t.Fatalf("got code %v (%v), want %v", got, err, tradeunit.CodeParamError)
	}
	if got := tradeunit.ErrorMessage(err); !strings.Contains(got, want) {
		t.Fatalf("got message %q, want it to contain %q", got, want)
	}
}

func TestLogicByZone(t *testing.T) {
	a, b, c := "10.0.1.1:1", "10.0.2.1:1", "10.0.1.2:1"
	u := Unit{ID: 1, LogicAddrs: []string{a, b, c}, LogicZones: map[string]string{a: "x", b: "y", c: "x"}}
	tests := []struct {
		name      string
		unit      Unit
		zone      string
		evacuated []string
		near, far []string
	}{
		{"no proxy zone", u, "", nil, []string{a, b, c}, nil},
		{"own zone first", u, "x", nil, []string{a, c}, []string{b}},
		{"other zone", u, "y", nil, []string{b}, []string{a, c}},
		{"zone with no replica: all near", u, "z", nil, []string{a, b, c}, nil},
		{"unit without zones", Unit{ID: 1, LogicAddrs: []string{a, b}}, "x", nil, []string{a, b}, nil},
		{"replica without a zone is far", Unit{ID: 1, LogicAddrs: []string{a, b}, LogicZones: map[string]string{b: "x"}}, "x", nil,
			[]string{b}, []string{a}},
		{"evacuated zone last", u, "y", []string{"x"}, []string{b}, []string{a, c}},
		{"own zone evacuated: the others near, it last", u, "x", []string{"x"}, []string{b}, []string{a, c}},
		{"no proxy zone, one evacuated", u, "", []string{"y"}, []string{a, c}, []string{b}},
		{"every zone evacuated: all, as a last resort", u, "x", []string{"x", "y"}, []string{a, b, c}, nil},
		{"replica without a zone is not evacuated", Unit{ID: 1, LogicAddrs: []string{a, b}, LogicZones: map[string]string{b: "x"}}, "", []string{"x"},
			[]string{a}, []string{b}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			near, far := tt.unit.LogicByZone(tt.zone, tt.evacuated)
			if !slices.Equal(near, tt.near) || !slices.Equal(far, tt.far) {
				t.Fatalf("got %v, %v; want %v, %v", near, far, tt.near, tt.far)
			}
		})
	}
}

func TestOnlyInEvacuatedZones(t *testing.T) {
	a, b := "10.0.1.1:1", "10.0.2.1:1"
	tbl := &Table{EvacuatedZones: []string{"x"}}
	tests := []struct {
		name string
		unit Unit
		want bool
	}{
		{"all in the evacuated zone", Unit{ID: 1, LogicAddrs: []string{a}, LogicZones: map[string]string{a: "x"}}, true},
		{"one elsewhere", Unit{ID: 1, LogicAddrs: []string{a, b}, LogicZones: map[string]string{a: "x", b: "y"}}, false},
		{"one of unknown zone", Unit{ID: 1, LogicAddrs: []string{a, b}, LogicZones: map[string]string{a: "x"}}, false},
		{"no replicas", Unit{ID: 1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tbl.OnlyInEvacuatedZones(&tt.unit); got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
	if (&Table{}).OnlyInEvacuatedZones(&tests[0].unit) {
		t.Fatal("a table without evacuated zones evacuates a unit")
	}
}

func TestSingleZone(t *testing.T) {
	zones := map[string]string{"a": "x", "b": "x", "c": "y"}
	tests := []struct {
		addrs []string
		want  string
	}{
		{nil, ""},
		{[]string{"a"}, "x"},
		{[]string{"a", "b"}, "x"},
		{[]string{"a", "c"}, ""},
		{[]string{"a", "unknown"}, ""},
	}
	for _, tt := range tests {
		if got := SingleZone(tt.addrs, zones); got != tt.want {
			t.Errorf("SingleZone(%v) = %q, want %q", tt.addrs, got, tt.want)
		}
	}
	st := Storage{Primary: db(t, "1"), Replicas: []dsn.DSN{db(t, "2")}, Fenced: []dsn.DSN{db(t, "3")},
		Zones: map[string]string{"127.0.0.1:3306": "a", "127.0.0.2:3306": "a", "127.0.0.3:3306": "b"}}
	if got := st.LiveZone(); got != "a" {
		t.Errorf("LiveZone: got %q, want a (a fenced server serves nothing)", got)
	}
}
