package sqlstore

import (
	"reflect"
	"strings"
	"testing"
)

func TestKeyCond(t *testing.T) {
	attempts := dataTables[3]
	orders := dataTables[4]
	for _, tt := range []struct {
		name     string
		t        table
		lo, hi   []any
		want     string
		wantArgs []any
	}{
		{"all", orders, nil, nil, "1 = 1", nil},
		{"after", orders, []any{"a"}, nil, "(`order_no` > ?)", []any{"a"}},
		{"up to", orders, nil, []any{"b"}, "(`order_no` <= ?)", []any{"b"}},
		{"between", orders, []any{"a"}, []any{"b"}, "(`order_no` > ?) AND (`order_no` <= ?)", []any{"a", "b"}},
		{"two columns", attempts, []any{"m", "o"}, []any{"n", "p"},
			"((`mchid` > ?) OR (`mchid` = ? AND `out_trade_no` > ?)) AND ((`mchid` < ?) OR (`mchid` = ? AND `out_trade_no` <= ?))",
			[]any{"m", "m", "o", "n", "n", "p"}},
	} {
		got, args := tt.t.rangeCond(tt.lo, tt.hi)
		if got != tt.want || !reflect.DeepEqual(args, tt.wantArgs) {
			t.Errorf("%s: got %q %v, want %q %v", tt.name, got, args, tt.want, tt.wantArgs)
		}
	}
}

// TestRowHashTellsRowsApart: values that would run together in a plain
// concatenation, or differ only in kind, hash differently.
func TestRowHashTellsRowsApart(t *testing.T) {
	rows := [][]any{
		{"ab", "c"}, {"a", "bc"}, {"abc", ""}, {int64(1)}, {uint64(1)}, {"\x00\x00\x00\x00\x00\x00\x00\x01"},
		{int64(-1)}, {uint64(1<<64 - 1)},
	}
	seen := map[uint64][]any{}
	for _, r := range rows {
		h, _ := rowHash(r)
		if prev, ok := seen[h]; ok {
			t.Errorf("rows %v and %v hash alike", prev, r)
		}
		seen[h] = r
	}
}

// TestCheckOrderCatchesCollation: a row outside its range, or out of order,
// as Go compares keys bytewise, is an error, not a silent miscopy.
func TestCheckOrderCatchesCollation(t *testing.T) {
	orders := dataTables[4]
	row := func(k string) []any { return []any{k} }
	for _, tt := range []struct {
		name   string
		rows   [][]any
		lo, hi []any
		ok     bool
	}{
		{"in order", [][]any{row("b"), row("c")}, []any{"a"}, []any{"c"}, true},
		{"case-insensitive order", [][]any{row("a"), row("B")}, nil, nil, false},
		{"below the range", [][]any{row("a")}, []any{"a"}, nil, false},
		{"above the range", [][]any{row("d")}, nil, []any{"c"}, false},
	} {
		err := orders.checkOrder("source", tt.rows, tt.lo, tt.hi)
		if (err == nil) != tt.ok {
			t.Errorf("%s: got %v, want ok %v", tt.name, err, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "collation") {
			t.Errorf("%s: %v does not name the collation", tt.name, err)
		}
	}
}
