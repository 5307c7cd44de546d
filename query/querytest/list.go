package querytest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"tradeunit"
	"tradeunit/query"
)

// listAll pages through q with q.Limit and returns the order numbers in the
// order they came, and the number of pages; between pages it calls
// between (nil: nothing).
func listAll(t *testing.T, s *query.Store, q query.ListQuery, between func()) (nos []string, pages int) {
	t.Helper()
	for {
		page, err := s.ListOrders(context.Background(), q)
		if err != nil {
			t.Fatalf("ListOrders(%+v): %v", q, err)
		}
		pages++
		limit := q.Limit
		if limit == 0 {
			limit = query.DefaultLimit
		}
		if len(page.Orders) > limit {
			t.Fatalf("got a page of %d orders, want at most the limit %d", len(page.Orders), limit)
		}
		for i, o := range page.Orders {
			if o.Mchid != q.Mchid {
				t.Fatalf("got an order of merchant %s in %s's listing", o.Mchid, q.Mchid)
			}
			if i > 0 && !before(page.Orders[i-1], o) {
				t.Fatalf("got %s before %s, want (create_time, order_no) ascending", page.Orders[i-1].OrderNo, o.OrderNo)
			}
			nos = append(nos, o.OrderNo)
		}
		if page.NextCursor == "" {
			return nos, pages
		}
		if pages > 10_000 {
			t.Fatal("the listing does not end")
		}
		q.Cursor = page.NextCursor
		if between != nil {
			between()
		}
	}
}

func before(a, b tradeunit.EventOrder) bool {
	return a.CreateTime.Before(b.CreateTime) || (a.CreateTime.Equal(b.CreateTime) && a.OrderNo < b.OrderNo)
}

// matching returns the order numbers of sim's orders q selects, in listing
// order.
func matching(sim *Sim, q query.ListQuery) []string {
	var sel []tradeunit.EventOrder
	for _, o := range sim.Orders {
		if o.Mchid == q.Mchid && (q.State == "" || o.State == q.State) &&
			(q.CreateFrom.IsZero() || !o.CreateTime.Before(q.CreateFrom)) &&
			(q.CreateTo.IsZero() || o.CreateTime.Before(q.CreateTo)) {
			sel = append(sel, *o)
		}
	}
	slices.SortFunc(sel, func(a, b tradeunit.EventOrder) int {
		if before(a, b) {
			return -1
		}
		return 1
	})
	nos := []string{}
	for _, o := range sel {
		nos = append(nos, o.OrderNo)
	}
	return nos
}

// manyOrders makes n orders of mchA and n/3 of mchB over day0's hours, in
// every state, several sharing a create time (the key's tie-break).
func manyOrders(sim *Sim, n int) {
	for i := range n {
		at := day0.Add(time.Duration(i/3) * 7 * time.Minute) // three orders per instant
		o := sim.Create(mchA, int64(100+i), "CNY", at)
		switch i % 4 {
		case 1:
			sim.Pay(o, at.Add(time.Minute))
		case 2:
			sim.Pay(o, at.Add(time.Minute))
			sim.Refund(o, 10, at.Add(2*time.Minute))
		case 3:
			sim.Close(o, at.Add(time.Minute))
		}
		if i%3 == 0 {
			sim.Create(mchB, 50, "CNY", at)
		}
	}
}

func testListFilters(t *testing.T, s *query.Store) {
	sim := NewSim(1)
	manyOrders(sim, 60)
	mustApply(t, s, sim.Events)
	from, to := day0.Add(time.Hour), day0.Add(3*time.Hour+30*time.Minute)
	queries := []query.ListQuery{
		{Mchid: mchA},
		{Mchid: mchB},
		{Mchid: "1900000999"},
		{Mchid: mchA, State: tradeunit.StateSuccess},
		{Mchid: mchA, State: tradeunit.StateRefund},
		{Mchid: mchA, CreateFrom: from},
		{Mchid: mchA, CreateTo: to},
		{Mchid: mchA, CreateFrom: from, CreateTo: to, State: tradeunit.StateNotPay},
		// The same instant in another zone selects the same orders.
		{Mchid: mchA, CreateFrom: from.UTC(), CreateTo: to.In(time.FixedZone("", -5*3600))},
	}
	for _, q := range queries {
		for _, limit := range []int{0, 1, 7, query.MaxLimit} {
			q := q
			q.Limit = limit
			t.Run(fmt.Sprintf("%s_%s_%d", q.Mchid, q.State, limit), func(t *testing.T) {
				got, pages := listAll(t, s, q, nil)
				want := matching(sim, q)
				if !slices.Equal(got, want) {
					t.Fatalf("got %v, want %v", got, want)
				}
				size := limit
				if size == 0 {
					size = query.DefaultLimit
				}
				if wantPages := max(1, (len(want)+size-1)/size); pages != wantPages && pages != wantPages+1 {
					t.Errorf("got %d pages, want %d", pages, wantPages)
				}
			})
		}
	}
}

// testListConcurrent pages through a merchant's orders while another
// consumer keeps applying new orders and changes to the listed ones: every
// order that existed at the first page comes exactly once.
func testListConcurrent(t *testing.T, s *query.Store) {
	seed := NewSim(1)
	manyOrders(seed, 90)
	mustApply(t, s, seed.Events)
	existing := map[string]bool{}
	for _, o := range seed.Orders {
		if o.Mchid == mchA {
			existing[o.OrderNo] = true
		}
	}

	// The writer applies one batch per page and says so: the listing
	// interleaves with it by handshake, not by timing.
	next, applied := make(chan struct{}), make(chan error)
	done := make(chan struct{})
	go func() {
		defer close(done)
		live := NewSim(2)
		var from int
		i := 0
		for range next {
			at := day0.Add(24*time.Hour + time.Duration(i)*time.Second)
			for range 3 {
				live.Create(mchA, 10, "CNY", at)
				live.Create(mchB, 10, "CNY", at)
			}
			// Changes to listed orders bump their versions, never
			// their keys.
			if o := seed.Orders[i%len(seed.Orders)]; o.State == tradeunit.StateNotPay {
				seed.Pay(o, at)
			}
			i++
			batch := append(live.Take(&from), seed.Events[len(seed.Events)-1])
			applied <- s.Apply(context.Background(), batch)
		}
	}()
	between := func() {
		next <- struct{}{}
		if err := <-applied; err != nil {
			t.Errorf("concurrent Apply: %v", err)
		}
	}
	got, _ := listAll(t, s, query.ListQuery{Mchid: mchA, Limit: 9}, between)
	close(next)
	<-done

	seen := map[string]int{}
	for _, no := range got {
		seen[no]++
		if seen[no] > 1 {
			t.Errorf("got order %s %d times, want once", no, seen[no])
		}
	}
	for no := range existing {
		if seen[no] != 1 {
			t.Errorf("got existing order %s %d times, want once", no, seen[no])
		}
	}
}

func testListBad(t *testing.T, s *query.Store) {
	ctx := context.Background()
	sim := NewSim(1)
	manyOrders(sim, 10)
	mustApply(t, s, sim.Events)
	first, err := s.ListOrders(ctx, query.ListQuery{Mchid: mchA, Limit: 2})
	if err != nil || first.NextCursor == "" {
		t.Fatalf("first page: got %+v, %v, want a next cursor", first, err)
	}
	c := first.NextCursor
	tampered := "B" + c[1:] // another format version
	tests := []struct {
		name string
		q    query.ListQuery
	}{
		{"no merchant", query.ListQuery{}},
		{"negative limit", query.ListQuery{Mchid: mchA, Limit: -1}},
		{"limit over the max", query.ListQuery{Mchid: mchA, Limit: query.MaxLimit + 1}},
		{"unknown state", query.ListQuery{Mchid: mchA, State: "PAID"}},
		{"empty range", query.ListQuery{Mchid: mchA, CreateFrom: day0, CreateTo: day0}},
		{"garbage cursor", query.ListQuery{Mchid: mchA, Cursor: "not a cursor!"}},
		{"short cursor", query.ListQuery{Mchid: mchA, Cursor: "AQ"}},
		{"tampered cursor", query.ListQuery{Mchid: mchA, Cursor: tampered}},
		{"cursor of another merchant", query.ListQuery{Mchid: mchB, Cursor: c}},
		{"cursor of other filters", query.ListQuery{Mchid: mchA, State: tradeunit.StateNotPay, Cursor: c}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.ListOrders(ctx, tt.q); !tradeunit.IsCode(err, tradeunit.CodeParamError) {
				t.Errorf("got %v, want PARAM_ERROR", err)
			}
		})
	}
	// Another page size with the same cursor is the same listing.
	if _, err := s.ListOrders(ctx, query.ListQuery{Mchid: mchA, Limit: 5, Cursor: c}); err != nil {
		t.Errorf("same query, other limit: got %v, want the next page", err)
	}
}
