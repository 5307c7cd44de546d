package routing

import (
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"

	"tradeunit"
)

// unitDoc returns the JSON object of a valid, hot unit; cases change it.
func unitDoc(id int) map[string]any {
	return map[string]any{
		"unit":        id,
		"partition":   "normal",
		"logic_addrs": []string{"127.0.0.1:9001"},
		"available":   true,
		"temperature": "hot",
		"accept_new":  true,
	}
}

// tableDoc returns the JSON of a table with the given units.
func tableDoc(t *testing.T, units ...map[string]any) []byte {
	t.Helper()
	data, err := json.Marshal(map[string]any{"revision": 1, "units": units})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// with returns u changed by set.
func with(u map[string]any, set func(u map[string]any)) map[string]any {
	set(u)
	return u
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		doc     []byte
		wantErr string // part of the message; "" for a good document
	}{
		{"minimal", []byte(`{"revision":1,"units":[{"unit":1,"logic_addrs":["h:1"],"available":true}]}`), ""},
		{"storage in the table", tableDoc(t, with(unitDoc(3), func(u map[string]any) { u["storage"] = map[string]any{"primary": "p"} })),
			`unknown field "storage"`},
		{"no units", []byte(`{"revision":0,"units":[]}`), ""},
		{"full", tableDoc(t, unitDoc(1), with(unitDoc(2), func(u map[string]any) {
			u["partition"] = "key_merchants-1"
			u["weight"] = 2.5
			u["labels"] = map[string]string{"release": "canary"}
		})), ""},
		{"unavailable without addresses", tableDoc(t, with(unitDoc(1), func(u map[string]any) {
			u["available"] = false
			u["logic_addrs"] = []string{}
		})), ""},
		{"ipv6 address", tableDoc(t, with(unitDoc(1), func(u map[string]any) { u["logic_addrs"] = []string{"[::1]:9001"} })), ""},
		{"max unit id", tableDoc(t, unitDoc(99999)), ""},

		{"duplicate id", tableDoc(t, unitDoc(2), unitDoc(1), unitDoc(2)), "unit 2: unit: duplicate unit number"},
		{"id 0", tableDoc(t, unitDoc(0)), "unit 0: unit: number out of range 1..99999"},
		{"id 100000", tableDoc(t, unitDoc(100000)), "unit 100000: unit: number out of range 1..99999"},
		{"bad temperature", tableDoc(t, with(unitDoc(3), func(u map[string]any) { u["temperature"] = "tepid" })),
			`unit 3: temperature "tepid" must be one of hot, warm, copying`},
		{"negative weight", tableDoc(t, with(unitDoc(3), func(u map[string]any) { u["weight"] = -1 })),
			"unit 3: weight -1 must be finite and not negative"},
		{"available without addresses", tableDoc(t, with(unitDoc(3), func(u map[string]any) { delete(u, "logic_addrs") })),
			"unit 3: logic_addrs: an available unit needs at least one address"},
		{"address without port", tableDoc(t, with(unitDoc(3), func(u map[string]any) { u["logic_addrs"] = []string{"h:1", "localhost"} })),
			`unit 3: logic_addrs[1] "localhost": not host:port`},
		{"address without host", tableDoc(t, with(unitDoc(3), func(u map[string]any) { u["logic_addrs"] = []string{":9001"} })),
			`unit 3: logic_addrs[0] ":9001": bad host`},
		{"port 0", tableDoc(t, with(unitDoc(3), func(u map[string]any) { u["logic_addrs"] = []string{"h:0"} })),
			`unit 3: logic_addrs[0] "h:0": port must be 1..65535`},
		{"port 70000", tableDoc(t, with(unitDoc(3), func(u map[string]any) { u["logic_addrs"] = []string{"h:70000"} })),
			`unit 3: logic_addrs[0] "h:70000": port must be 1..65535`},
		{"unknown unit field", tableDoc(t, with(unitDoc(3), func(u map[string]any) { u["colour"] = "red" })),
			`unknown field "colour"`},
		{"unknown table field", []byte(`{"revision":1,"units":[],"version":2}`), `unknown field "version"`},
		{"bad partition", tableDoc(t, with(unitDoc(3), func(u map[string]any) { u["partition"] = "Key" })),
			`unit 3: partition "Key" must match [a-z0-9_-]{1,32}`},
		{"long partition", tableDoc(t, with(unitDoc(3), func(u map[string]any) { u["partition"] = strings.Repeat("p", 33) })),
			"unit 3: partition"},
		{"negative revision", []byte(`{"revision":-1,"units":[]}`), "revision -1 is negative"},
		{"wrong type", []byte(`{"revision":1,"units":[{"unit":"one"}]}`), "cannot unmarshal"},
		{"null", []byte(`null`), "not a JSON object"},
		{"empty", []byte(``), "not a JSON object"},
		{"half written", []byte(`{"revision":1,"units":[{"unit":1,"logic_`), "unexpected EOF"},
		{"trailing data", []byte(`{"revision":1,"units":[]} {}`), "data after the JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tbl, err := Parse(tt.doc)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				if tbl == nil {
					t.Fatal("got nil table")
				}
				return
			}
			if err == nil {
				t.Fatalf("got no error, want %q", tt.wantErr)
			}
			if got := tradeunit.ErrorCode(err); got != tradeunit.CodeParamError {
				t.Errorf("got code %v, want %v", got, tradeunit.CodeParamError)
			}
			if got := tradeunit.ErrorMessage(err); !strings.Contains(got, tt.wantErr) {
				t.Errorf("got message %q, want it to contain %q", got, tt.wantErr)
			}
		})
	}
}

func TestParseDefaults(t *testing.T) {
	tbl, err := Parse([]byte(`{"revision":7,"units":[
		{"unit":2,"logic_addrs":["h:2"],"available":true,"accept_new":true},
		{"unit":1,"partition":"key","temperature":"warm","weight":0.5}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tbl.Revision, int64(7); got != want {
		t.Errorf("revision: got %v, want %v", got, want)
	}
	if got, want := unitIDs(tbl.Units), []tradeunit.UnitID{1, 2}; !slices.Equal(got, want) {
		t.Fatalf("units: got %v, want %v (sorted by id)", got, want)
	}
	def := tbl.Units[1]
	if got, want := def.Partition, "normal"; got != want {
		t.Errorf("default partition: got %v, want %v", got, want)
	}
	if got, want := def.Temperature, Hot; got != want {
		t.Errorf("default temperature: got %v, want %v", got, want)
	}
	if got, want := def.Weight, 1.0; got != want {
		t.Errorf("default weight: got %v, want %v", got, want)
	}
	set := tbl.Units[0]
	if set.Partition != "key" || set.Temperature != Warm || set.Weight != 0.5 {
		t.Errorf("explicit values: got %q %q %v, want key warm 0.5", set.Partition, set.Temperature, set.Weight)
	}
	if set.LogicAddrs == nil {
		t.Errorf("logic_addrs: got nil, want empty (written as [])")
	}
}

func TestMarshal(t *testing.T) {
	tbl := &Table{Revision: 3, Units: []Unit{
		{ID: 9, LogicAddrs: []string{"h:9"}, Available: true, AcceptNew: true},
		{ID: 4, Labels: map[string]string{"release": "canary"}},
	}}
	data, err := tbl.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := unitIDs(tbl.Units), []tradeunit.UnitID{9, 4}; !slices.Equal(got, want) {
		t.Errorf("Marshal changed the table: got %v, want %v", got, want)
	}
	if i4, i9 := strings.Index(string(data), `"unit": 4`), strings.Index(string(data), `"unit": 9`); i4 < 0 || i9 < 0 || i4 > i9 {
		t.Errorf("got units out of id order:\n%s", data)
	}
	back, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	tbl.Normalize()
	if !reflect.DeepEqual(back, tbl) {
		t.Errorf("round trip: got %+v, want %+v", back, tbl)
	}

	empty, err := (&Table{}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(empty), `"units": []`) {
		t.Errorf("empty table: got %s, want units []", empty)
	}
}

func TestValidateLiteral(t *testing.T) {
	tests := []struct {
		name    string
		unit    Unit
		wantErr string
	}{
		{"defaults left empty", Unit{ID: 1}, ""},
		{"NaN weight", Unit{ID: 1, Weight: math.NaN()}, "unit 1: weight NaN"},
		{"infinite weight", Unit{ID: 1, Weight: math.Inf(1)}, "unit 1: weight +Inf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := (&Table{Units: []Unit{tt.unit}}).Validate()
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
}

func TestUnitLookup(t *testing.T) {
	parsed, err := Parse(tableDoc(t, unitDoc(5), unitDoc(2), unitDoc(40)))
	if err != nil {
		t.Fatal(err)
	}
	literal := &Table{Units: []Unit{{ID: 40}, {ID: 5}, {ID: 2}}}
	literal.Normalize()
	unnormalized := &Table{Units: []Unit{{ID: 40}, {ID: 5}, {ID: 2}}}
	appended := literal.Clone()
	appended.Units = append(appended.Units, Unit{ID: 7}) // editor forgot Normalize

	tables := map[string]*Table{"parsed": parsed, "literal": literal, "unnormalized": unnormalized, "appended": appended}
	for name, tbl := range tables {
		t.Run(name, func(t *testing.T) {
			for _, id := range []tradeunit.UnitID{2, 5, 40} {
				u, ok := tbl.Unit(id)
				if !ok {
					t.Fatalf("Unit(%d): got not found, want found", id)
				}
				if u.ID != id {
					t.Errorf("Unit(%d): got unit %v, want %v", id, u.ID, id)
				}
			}
			for _, id := range []tradeunit.UnitID{0, 1, 41, tradeunit.MaxUnitID} {
				if u, ok := tbl.Unit(id); ok {
					t.Errorf("Unit(%d): got %v, want not found", id, u.ID)
				}
			}
		})
	}
	if _, ok := appended.Unit(7); !ok {
		t.Errorf("Unit(7) after append: got not found, want found")
	}

	allocs := testing.AllocsPerRun(100, func() { parsed.Unit(40) })
	if allocs != 0 {
		t.Errorf("Unit allocations: got %v, want 0", allocs)
	}
}

func TestTakesNewOrders(t *testing.T) {
	tests := []struct {
		name string
		unit Unit
		want bool
	}{
		{"hot", Unit{Available: true, Temperature: Hot, AcceptNew: true}, true},
		{"default temperature", Unit{Available: true, AcceptNew: true}, true},
		{"unavailable", Unit{Temperature: Hot, AcceptNew: true}, false},
		{"warm", Unit{Available: true, Temperature: Warm, AcceptNew: true}, false},
		{"cold", Unit{Available: true, Temperature: Cold, AcceptNew: true}, false},
		{"drained", Unit{Available: true, Temperature: Hot}, false},
	}
	for _, tt := range tests {
		if got := tt.unit.TakesNewOrders(); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestClone(t *testing.T) {
	doc := tableDoc(t, unitDoc(1), with(unitDoc(2), func(u map[string]any) {
		u["labels"] = map[string]string{"release": "v1"}
	}))
	orig, err := Parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Parse(doc)
	if err != nil {
		t.Fatal(err)
	}

	c := orig.Clone()
	if !reflect.DeepEqual(c, orig) {
		t.Fatalf("clone: got %+v, want %+v", c, orig)
	}
	c.Revision++
	c.Units[0].Available = false
	c.Units[0].LogicAddrs[0] = "changed:1"
	c.Units[1].Labels["release"] = "v2"
	u2, _ := c.Unit(2)
	u2.Weight = 9
	c.Units = append(c.Units, Unit{ID: 3})
	c.Normalize()

	if !reflect.DeepEqual(orig, want) {
		t.Errorf("original after changing the clone: got %+v, want %+v", orig, want)
	}
	if _, ok := orig.Unit(3); ok {
		t.Errorf("original has the clone's new unit 3")
	}
	if got := (*Table)(nil).Clone(); got != nil {
		t.Errorf("nil clone: got %v, want nil", got)
	}
}

func unitIDs(units []Unit) []tradeunit.UnitID {
	var ids []tradeunit.UnitID
	for _, u := range units {
		ids = append(ids, u.ID)
	}
	return ids
}
