package dirstore

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"tradeunit"
	"tradeunit/dsn"
)

// TestSQLiteQueriesUseTheirIndexes: the reconciler's listing and a bucket's
// walk each search their index from the page's first key, in index order
// (no scan from the start, no sort): a page costs its length, not the
// table's size. (MariaDB's plans were read by hand with ANALYZE on 20,000
// rows: the spelt-out key condition gives a range on each index.)
func TestSQLiteQueriesUseTheirIndexes(t *testing.T) {
	s, err := Open(context.Background(), dsn.MustParse("sqlite:"+filepath.Join(t.TempDir(), "d.db")), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	after := tradeunit.MerchantKey{Mchid: "1900000001", Kind: tradeunit.KeyOrder, Value: "otn-000001"}
	for index, q := range map[string]func() (string, []any){
		"directory_entries_abandoned": func() (string, []any) { return s.abandonedQuery(after, 10) },
		"directory_entries_bucket":    func() (string, []any) { return s.bucketQuery(7, after, 10) },
	} {
		query, args := q()
		rows, err := s.read.Query("EXPLAIN QUERY PLAN "+query, args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		got := strings.Join(plan, "; ")
		if !strings.Contains(got, "SEARCH directory_entries USING INDEX "+index+" (") || strings.Contains(got, "TEMP B-TREE") {
			t.Errorf("plan of %s: %s; want a search of %s from the key, no sort", query, got, index)
		}
	}
}
