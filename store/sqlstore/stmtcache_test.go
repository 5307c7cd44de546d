package sqlstore

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"tradeunit"
	"tradeunit/dsn"
	"tradeunit/orderno"
)

func openCacheTestStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn.MustParse("sqlite:"+filepath.Join(t.TempDir(), "unit.db")), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// cacheTestBatches returns rounds batches of n new orders, the same on
// every call, with attempts so that the superseded read runs too.
func cacheTestBatches(t *testing.T, rounds, n int) [][]*tradeunit.Order {
	t.Helper()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var batches [][]*tradeunit.Order
	seq := uint64(0)
	for range rounds {
		var b []*tradeunit.Order
		for range n {
			seq++
			no, err := orderno.New(7, at, seq)
			if err != nil {
				t.Fatal(err)
			}
			s := no.String()
			b = append(b, &tradeunit.Order{OrderNo: s, Mchid: "m1", OutTradeNo: "out-" + s[len(s)-12:],
				Description: "stmt", Amount: tradeunit.Amount{Total: 100, Currency: "CNY"}, CreateTime: at, Attempt: 1})
		}
		batches = append(batches, b)
	}
	return batches
}

// runCacheTestBatches creates each batch and then pays its orders, in one
// transaction each.
func runCacheTestBatches(t *testing.T, s *Store, batches [][]*tradeunit.Order) {
	t.Helper()
	ctx := context.Background()
	for _, b := range batches {
		var pays []tradeunit.OrderChange
		for i, r := range s.CreateOrders(ctx, b) {
			if r.Err != nil || !r.Created {
				t.Fatalf("create %s: got created %v, err %v, want created", b[i].OrderNo, r.Created, r.Err)
			}
			pays = append(pays, tradeunit.OrderChange{Kind: tradeunit.ChangePay, Mchid: b[i].Mchid,
				OrderNo: b[i].OrderNo, PaymentID: "pay-" + b[i].OrderNo, At: b[i].CreateTime.Add(time.Second)})
		}
		for i, r := range s.ChangeOrders(ctx, pays) {
			if r.Err != nil {
				t.Fatalf("pay %s: %v", pays[i].OrderNo, r.Err)
			}
		}
	}
}

// TestStmtCacheSizes: a batch size's statements are prepared after its
// first transaction and reused by the next ones, up to maxCachedRows; what
// is written is what a Store without the cache writes.
func TestStmtCacheSizes(t *testing.T) {
	tests := []struct {
		size int
		// stmts is how many statements the size caches: the orders'
		// INSERT, the superseded read, the events' INSERT and the
		// locked read (one order is created without the first two).
		stmts int
	}{
		{size: 1, stmts: 2},
		{size: 2, stmts: 4},
		{size: 17, stmts: 4},
		{size: maxCachedRows, stmts: 4},
		{size: maxCachedRows + 1, stmts: 0},
	}
	const rounds = 3
	for _, tt := range tests {
		t.Run(fmt.Sprintf("rows=%d", tt.size), func(t *testing.T) {
			cached, plain := openCacheTestStore(t), openCacheTestStore(t)
			plain.stmts.close()
			plain.stmts = nil
			runCacheTestBatches(t, cached, cacheTestBatches(t, rounds, tt.size))
			runCacheTestBatches(t, plain, cacheTestBatches(t, rounds, tt.size))

			c := cached.stmts
			if got := c.len(false); got != tt.stmts {
				t.Errorf("cached statements: got %d, want %d", got, tt.stmts)
			}
			// Each statement misses once, in the first round; the
			// create and the pay of a size use the events' INSERT each.
			if got := c.misses.Load(); got != int64(tt.stmts) {
				t.Errorf("misses: got %d, want %d", got, tt.stmts)
			}
			wantHits := int64(0)
			if tt.stmts > 0 {
				wantHits = int64(rounds*(tt.stmts+1) - tt.stmts)
			}
			if got := c.hits.Load(); got != wantHits {
				t.Errorf("hits: got %d, want %d", got, wantHits)
			}

			// The fixed texts: the freeze fence and the pays' UPDATE,
			// and from two orders a batch the savepoint; the single
			// order's INSERT and superseded read when a batch has one.
			wantFixed := 3
			if tt.size == 1 {
				wantFixed = 4
			}
			if got := c.len(true); got != wantFixed {
				t.Errorf("fixed statements cached: got %d, want %d", got, wantFixed)
			}

			got, err := cached.Dump(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			want, err := plain.Dump(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("rows written with the cache differ from those without it:\ngot  %v\nwant %v", got, want)
			}
		})
	}
}

// TestStmtCacheCap: past maxStmts statements, or maxRows rows, a size is
// neither prepared nor noted, and runs unprepared.
func TestStmtCacheCap(t *testing.T) {
	s := openCacheTestStore(t)
	c := newStmtCache(s.write)
	c.maxRows, c.maxStmts = 4, 3
	defer c.close()
	query := func(rows int) func() string {
		return func() string { return "SELECT " + strings.TrimSuffix(strings.Repeat("?, ", rows), ", ") }
	}
	tests := []struct {
		rows       int
		wantCached bool
	}{
		{rows: 1, wantCached: true},
		{rows: 2, wantCached: true},
		{rows: 5, wantCached: false}, // more than maxRows
		{rows: 3, wantCached: true},
		{rows: 4, wantCached: false}, // the cache is full
		{rows: 0, wantCached: false},
	}
	for _, tt := range tests {
		if st := c.lookup(stmtKey{kind: stmtInsertEvents, rows: tt.rows}, query(tt.rows)); st != nil {
			t.Fatalf("rows=%d: a statement before any was prepared", tt.rows)
		}
	}
	c.prepareWanted(context.Background())
	if got := c.len(false); got != 3 {
		t.Errorf("cached statements: got %d, want 3", got)
	}
	for _, tt := range tests {
		st := c.lookup(stmtKey{kind: stmtInsertEvents, rows: tt.rows}, query(tt.rows))
		if got := st != nil; got != tt.wantCached {
			t.Errorf("rows=%d: got cached %v, want %v", tt.rows, got, tt.wantCached)
		}
	}
	c.prepareWanted(context.Background())
	if got := c.len(false); got != 3 {
		t.Errorf("cached statements after a full cache missed: got %d, want 3", got)
	}
}

// TestStmtCacheClosed: closing the Store closes the statements; a closed
// cache finds nothing and prepares nothing, even what it was asked for
// before it closed; a nil cache (MySQL's) is always a miss.
func TestStmtCacheClosed(t *testing.T) {
	tests := []struct {
		name  string
		close func(s *Store) *stmtCache
	}{
		{"store closed", func(s *Store) *stmtCache {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			return s.stmts
		}},
		{"cache closed with a size wanted", func(s *Store) *stmtCache {
			c := s.stmts
			c.lookup(stmtKey{kind: stmtInsertEvents, rows: 99}, func() string { return "SELECT 1" })
			c.close()
			c.prepareWanted(context.Background())
			return c
		}},
		{"nil cache", func(s *Store) *stmtCache { return nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openCacheTestStore(t)
			runCacheTestBatches(t, s, cacheTestBatches(t, 2, 3))
			if s.stmts.len(false) == 0 {
				t.Fatal("nothing cached before closing")
			}
			c := tt.close(s)
			if got := c.len(false); got != 0 {
				t.Errorf("statements after closing: got %d, want 0", got)
			}
			if st := c.lookup(stmtKey{kind: stmtInsertOrders, rows: 3}, func() string { return insertOrdersQuery(3) }); st != nil {
				t.Error("lookup after closing: got a statement, want none")
			}
			c.prepareWanted(context.Background())
			if got := c.len(false); got != 0 {
				t.Errorf("statements after closing and preparing: got %d, want 0", got)
			}
		})
	}
}
