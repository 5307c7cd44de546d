package proxy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"tradeunit"
	"tradeunit/orderno"
	"tradeunit/routing"
	"tradeunit/selection"
)

func addrOf(id tradeunit.UnitID) string { return fmt.Sprintf("10.0.0.%d:9000", id) }

// The answers a fake unit can give instead of making the order.
var (
	conflict = func(context.Context, tradeunit.CreateOrderRequest) (*tradeunit.Order, error) {
		return nil, tradeunit.Errorf(tradeunit.CodeOutTradeNoUsed, "used")
	}
	noAnswer = func(context.Context, tradeunit.CreateOrderRequest) (*tradeunit.Order, error) {
		return nil, tradeunit.NoAnswer("fake", "unit unreachable", errors.New("connection refused"))
	}
	lostCommit = func(context.Context, tradeunit.CreateOrderRequest) (*tradeunit.Order, error) {
		return nil, tradeunit.UnknownOutcome("fake", errors.New("bad connection"))
	}
	readOnly = func(context.Context, tradeunit.CreateOrderRequest) (*tradeunit.Order, error) {
		return nil, tradeunit.Unavailable("fake", "storage is read-only; nothing was written", nil)
	}
	fault = func(context.Context, tradeunit.CreateOrderRequest) (*tradeunit.Order, error) {
		return nil, tradeunit.Internal("fake", errors.New("bug"))
	}
)

// retryProxy is a proxy over n fake units and one fake directory shard.
type retryProxy struct {
	*Proxy
	ranked []*fakeUnit // in the order the plan tries them for the test's key
	dialer *fakeDialer
}

func newRetryProxy(t *testing.T, n, attempts int, unitTimeout time.Duration) *retryProxy {
	t.Helper()
	table := &routing.Table{Revision: 1, Directory: &routing.Directory{Shards: []routing.DirectoryShard{
		{Shard: 1, Buckets: []routing.BucketRange{routing.AllBuckets}, LogicAddrs: []string{shardAddr}, Available: true}}}}
	dialer := &fakeDialer{units: map[string]*fakeUnit{}, shard: newFakeShard()}
	byID := map[tradeunit.UnitID]*fakeUnit{}
	for i := 1; i <= n; i++ {
		id := tradeunit.UnitID(i)
		table.Units = append(table.Units, routing.Unit{ID: id, LogicAddrs: []string{addrOf(id)}, Available: true, AcceptNew: true})
		byID[id] = newFakeUnit(id)
		dialer.units[addrOf(id)] = byID[id]
	}
	return startRetryProxy(t, table, dialer, byID, attempts, unitTimeout)
}

// startRetryProxy starts another proxy over the same units and shard.
func startRetryProxy(t *testing.T, table *routing.Table, dialer *fakeDialer, byID map[tradeunit.UnitID]*fakeUnit, attempts int, unitTimeout time.Duration) *retryProxy {
	t.Helper()
	routes, err := routing.NewMemoryTable(table)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.MaxCreateAttempts, cfg.UnitTimeout = attempts, unitTimeout
	p, err := New(cfg, Deps{Routes: routes, Dialer: dialer, Registry: prometheus.NewRegistry(), Logger: discardLogger(),
		Credentials: &Credentials{Merchants: []Merchant{{Mchid: "1900000001", APIKey: "0123456789abcdef"}}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	order, err := p.plan.Load().Pick(nil, "1900000001", "retry-0001", selection.MaxPick)
	if err != nil {
		t.Fatal(err)
	}
	rp := &retryProxy{Proxy: p, dialer: dialer}
	for _, id := range order {
		rp.ranked = append(rp.ranked, byID[id])
	}
	return rp
}

func createRequest(total int64) tradeunit.CreateOrderRequest {
	return tradeunit.CreateOrderRequest{Mchid: "1900000001", OutTradeNo: "retry-0001", Description: "d",
		Amount: tradeunit.Amount{Total: total}}
}

var retryKey = tradeunit.MerchantKey{Mchid: "1900000001", Kind: tradeunit.KeyOrder, Value: "retry-0001"}

// TestCreateOrderRetry drives create's order retry over fake units that
// answer, fail or stay silent, in the order the plan ranks them.
func TestCreateOrderRetry(t *testing.T) {
	type answer = func(context.Context, tradeunit.CreateOrderRequest) (*tradeunit.Order, error)
	tests := []struct {
		name     string
		attempts int      // MaxCreateAttempts
		answers  []answer // of the ranked units; nil: make the order
		undial   []int    // ranks whose address cannot be dialed
		down     []int    // ranks whose connection is known down
		wantCode tradeunit.Code
		wantWin  int   // rank that made the order (when wantCode is "")
		wantAbd  []int // ranks whose attempts are recorded as abandoned
		wantCall []int // calls per rank
		wantTry  int   // attempts reported
	}{
		{name: "first unit creates", attempts: 3,
			wantWin: 0, wantCall: []int{1, 0, 0, 0}, wantTry: 1},
		{name: "a definite answer stops", attempts: 3, answers: []answer{conflict},
			wantCode: tradeunit.CodeOutTradeNoUsed, wantCall: []int{1, 0, 0, 0}, wantTry: 1},
		{name: "no answer moves on and is recorded", attempts: 3, answers: []answer{noAnswer},
			wantWin: 1, wantAbd: []int{0}, wantCall: []int{1, 1, 0, 0}, wantTry: 2},
		{name: "a lost commit moves on and is recorded", attempts: 3, answers: []answer{lostCommit},
			wantWin: 1, wantAbd: []int{0}, wantCall: []int{1, 1, 0, 0}, wantTry: 2},
		{name: "a fault of the unit moves on and is recorded", attempts: 3, answers: []answer{fault},
			wantWin: 1, wantAbd: []int{0}, wantCall: []int{1, 1, 0, 0}, wantTry: 2},
		{name: "nothing written moves on and is not recorded", attempts: 3, answers: []answer{readOnly, noAnswer},
			wantWin: 2, wantAbd: []int{1}, wantCall: []int{1, 1, 1, 0}, wantTry: 3},
		{name: "the attempt limit holds", attempts: 2, answers: []answer{noAnswer, readOnly},
			wantCode: tradeunit.CodeNoUnitAvailable, wantCall: []int{1, 1, 0, 0}, wantTry: 2},
		{name: "a unit that cannot be dialed uses no attempt", attempts: 2, undial: []int{0},
			answers: []answer{nil, noAnswer}, wantWin: 2, wantAbd: []int{1}, wantCall: []int{0, 1, 1, 0}, wantTry: 2},
		{name: "every unit passed over is recorded", attempts: 4, answers: []answer{noAnswer, lostCommit, fault},
			wantWin: 3, wantAbd: []int{0, 1, 2}, wantCall: []int{1, 1, 1, 1}, wantTry: 4},
		{name: "a down unit gets one reconnect, which counts", attempts: 3, down: []int{0}, answers: []answer{noAnswer},
			wantWin: 1, wantAbd: []int{0}, wantCall: []int{1, 1, 0, 0}, wantTry: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newRetryProxy(t, 4, tt.attempts, time.Second)
			for i, a := range tt.answers {
				p.ranked[i].create = a
			}
			for _, i := range tt.undial {
				p.dialer.undial(addrOf(p.ranked[i].id))
			}
			for _, i := range tt.down {
				p.ranked[i].down = true
			}
			o, tries, err := p.createOrder(context.Background(), createRequest(1))
			if got := tradeunit.ErrorCode(err); got != tt.wantCode {
				t.Fatalf("got %v, want code %q", err, tt.wantCode)
			}
			if tries != tt.wantTry {
				t.Errorf("attempts: got %d, want %d", tries, tt.wantTry)
			}
			var calls []int
			for _, u := range p.ranked {
				calls = append(calls, u.calls)
			}
			if !slices.Equal(calls, tt.wantCall) {
				t.Errorf("calls per ranked unit: got %v, want %v", calls, tt.wantCall)
			}
			for _, i := range tt.down {
				if p.ranked[i].reconnected == 0 {
					t.Errorf("down unit at rank %d was not asked to reconnect", i)
				}
			}
			if tt.wantCode != "" {
				return
			}
			var want []tradeunit.UnitID
			for _, i := range tt.wantAbd {
				want = append(want, p.ranked[i].id)
			}
			e := p.dialer.shard.get(retryKey)
			var abandoned []tradeunit.UnitID
			for _, a := range e.Abandoned {
				abandoned = append(abandoned, a.Unit)
			}
			winner := p.ranked[tt.wantWin]
			if e.State != tradeunit.EntryCommitted || e.RecordNo != o.OrderNo || e.Attempt.Unit != winner.id || !slices.Equal(abandoned, want) {
				t.Errorf("entry %+v: want committed to %s on unit %d, abandoned units %v", e, o.OrderNo, winner.id, want)
			}
			if !slices.Equal(o.AbandonedUnits, want) || o.Attempt != e.Attempt.ID {
				t.Errorf("order: abandoned %v attempt %d, want %v and the entry's attempt %d", o.AbandonedUnits, o.Attempt, want, e.Attempt.ID)
			}
		})
	}
}

// TestCreateOrderIsOncePerKey: a repeat returns the first order without a
// new one; another body is refused; a shard that cannot be reached creates
// nothing.
func TestCreateOrderIsOncePerKey(t *testing.T) {
	p := newRetryProxy(t, 3, 3, time.Second)
	first, _, err := p.createOrder(context.Background(), createRequest(1))
	if err != nil {
		t.Fatal(err)
	}
	again, tries, err := p.createOrder(context.Background(), createRequest(1))
	if err != nil || again.OrderNo != first.OrderNo || tries != 0 {
		t.Fatalf("repeat: got %+v after %d creates, %v; want order %s, no create", again, tries, err, first.OrderNo)
	}
	if _, _, err := p.createOrder(context.Background(), createRequest(2)); !tradeunit.IsCode(err, tradeunit.CodeOutTradeNoUsed) {
		t.Fatalf("another body: got %v, want OUT_TRADE_NO_USED", err)
	}
	got, err := p.orderByOutTradeNo(context.Background(), "1900000001", "retry-0001")
	if err != nil || got.OrderNo != first.OrderNo {
		t.Fatalf("lookup: got %+v, %v; want %s", got, err, first.OrderNo)
	}

	for _, tt := range []struct {
		name string
		set  func(s *fakeShard)
	}{
		{"shard down", func(s *fakeShard) { s.down = true }},
		{"shard refusing writes", func(s *fakeShard) { s.refuse = true }},
	} {
		shard := p.dialer.shard
		shard.mu.Lock()
		shard.down, shard.refuse, shard.puts = false, false, 0
		tt.set(shard)
		shard.mu.Unlock()
		r := createRequest(1)
		r.OutTradeNo = "retry-0002"
		_, tries, err = p.createOrder(context.Background(), r)
		if !tradeunit.IsCode(err, tradeunit.CodeUnitUnavailable) || tries != 0 {
			t.Fatalf("%s: got %v after %d creates, want UNIT_UNAVAILABLE and no create", tt.name, err, tries)
		}
		shard.mu.Lock()
		puts := shard.puts
		shard.mu.Unlock()
		if puts > 1 {
			t.Fatalf("%s: %d writes to the shard, want the create to fail at the first (%v)", tt.name, puts, err)
		}
	}
}

// TestConcurrentCreatesMakeOneOrder: identical creates at once, through
// two proxies, all answer the same order; a different body at once is
// refused, or told to retry while the other holds the key, never a second
// order.
func TestConcurrentCreatesMakeOneOrder(t *testing.T) {
	p := newRetryProxy(t, 4, 3, time.Second)
	table := p.routes.Current()
	byID := map[tradeunit.UnitID]*fakeUnit{}
	for _, u := range p.ranked {
		byID[u.id] = u
	}
	p2 := startRetryProxy(t, table, p.dialer, byID, 3, time.Second)
	var (
		mu     sync.Mutex
		orders = map[string]int{}
		used   int
		busy   int // told to retry: another body's create held the key
	)
	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			px, total := p, int64(1)
			if i%2 == 1 {
				px = p2
			}
			if i%10 == 9 {
				total = 2
			}
			o, _, err := px.createOrder(context.Background(), createRequest(total))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				orders[o.OrderNo]++
			case tradeunit.IsCode(err, tradeunit.CodeOutTradeNoUsed):
				used++
			case tradeunit.IsCode(err, tradeunit.CodeUnitUnavailable):
				busy++
			default:
				t.Errorf("create: %v", err)
			}
		}()
	}
	wg.Wait()
	if len(orders) != 1 {
		t.Fatalf("orders answered: %v, want one", orders)
	}
	for no, n := range orders {
		if n+used+busy != 40 {
			t.Errorf("%d answered %s, %d refused, %d told to retry: want 40 in all", n, no, used, busy)
		}
	}
	made := 0
	for _, u := range p.ranked {
		made += len(u.orders)
	}
	if made != 1 {
		t.Errorf("units hold %d orders for the key, want 1", made)
	}
}

// TestSlowUnitsOrderIsNotReturned: the first unit takes the create and
// answers only after another proxy, finding the entry stale and the unit
// silent, moved the entry on and committed an order elsewhere. The slow
// answer reaches its proxy, which does not return it: it returns the
// order the entry names; the slow one is an orphan, listed as abandoned.
func TestSlowUnitsOrderIsNotReturned(t *testing.T) {
	p := newRetryProxy(t, 3, 3, 2*time.Second)
	slow := p.ranked[0]
	release := make(chan struct{})
	slow.create = func(ctx context.Context, r tradeunit.CreateOrderRequest) (*tradeunit.Order, error) {
		<-release
		return slow.make(r)
	}
	slow.supersede = func(ctx context.Context) error { // silent too
		<-ctx.Done()
		return tradeunit.NoAnswer("fake", "timeout", ctx.Err())
	}
	byID := map[tradeunit.UnitID]*fakeUnit{}
	for _, u := range p.ranked {
		byID[u.id] = u
	}
	// The second proxy's deadline is short: the first's pending entry is
	// stale to it after 2 × 20 ms.
	p2 := startRetryProxy(t, p.routes.Current(), p.dialer, byID, 3, 20*time.Millisecond)

	firstDone := make(chan *tradeunit.Order, 1)
	go func() {
		o, _, err := p.createOrder(context.Background(), createRequest(1))
		if err != nil {
			t.Errorf("first proxy: %v", err)
		}
		firstDone <- o
	}()
	waitFor(t, "the first create's pending entry grown stale", func() bool {
		e := p.dialer.shard.get(retryKey)
		return e != nil && time.Since(e.Updated) > 50*time.Millisecond
	})
	second, _, err := p2.createOrder(context.Background(), createRequest(1))
	if err != nil {
		t.Fatal(err)
	}
	close(release)
	first := <-firstDone
	if first == nil || first.OrderNo != second.OrderNo {
		t.Fatalf("first proxy returned %+v, second %+v: want the same order", first, second)
	}
	if unit, _ := orderno.UnitOf(second.OrderNo); unit == slow.id || len(slow.orders) != 1 {
		t.Fatalf("the slow unit's order %v was returned, or it made none (%d)", second.OrderNo, len(slow.orders))
	}
	e := p.dialer.shard.get(retryKey)
	if len(e.Abandoned) != 1 || e.Abandoned[0].Unit != slow.id {
		t.Fatalf("entry %+v: want the slow unit's attempt abandoned, for the reconciler", e)
	}
}

// TestCreateOrderStopsForACancelledCaller: a caller that gives up stops the
// create at once: no further unit is called.
func TestCreateOrderStopsForACancelledCaller(t *testing.T) {
	p := newRetryProxy(t, 4, 3, time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	called := make(chan struct{})
	p.ranked[0].create = func(ctx context.Context, r tradeunit.CreateOrderRequest) (*tradeunit.Order, error) {
		close(called)
		<-ctx.Done()
		return nil, tradeunit.NoAnswer("fake", "deadline", ctx.Err())
	}
	go func() { <-called; cancel() }()
	_, tries, err := p.createOrder(ctx, createRequest(1))
	if err == nil || tries != 1 {
		t.Fatalf("got %v after %d attempts, want a failure after 1", err, tries)
	}
	for i, u := range p.ranked[1:] {
		if u.calls != 0 {
			t.Errorf("unit at rank %d called %d times after the caller gave up", i+1, u.calls)
		}
	}
}

// TestCreateOfAnotherBodyWhilePending: while a create holds the key's
// pending entry, a create of another body is told to retry, not
// OUT_TRADE_NO_USED: a lookup says 404 until the first commits, and the
// first may yet make nothing, so a refusal could be contradicted (found by
// e2e TestLinearizable). Once the first has committed, it is refused.
func TestCreateOfAnotherBodyWhilePending(t *testing.T) {
	p := newRetryProxy(t, 3, 3, time.Second)
	first := p.ranked[0]
	reached, release := make(chan struct{}), make(chan struct{})
	first.create = func(ctx context.Context, r tradeunit.CreateOrderRequest) (*tradeunit.Order, error) {
		close(reached)
		<-release
		return first.make(r)
	}
	done := make(chan error, 1)
	go func() {
		_, _, err := p.createOrder(context.Background(), createRequest(1))
		done <- err
	}()
	<-reached
	_, tries, err := p.createOrder(context.Background(), createRequest(2))
	if !tradeunit.IsCode(err, tradeunit.CodeUnitUnavailable) || tries != 0 {
		t.Fatalf("another body while the first is pending: got %v after %d creates, want UNIT_UNAVAILABLE and no create", err, tries)
	}
	if _, err := p.orderByOutTradeNo(context.Background(), "1900000001", "retry-0001"); !tradeunit.IsCode(err, tradeunit.CodeNotFound) {
		t.Fatalf("lookup while pending: got %v, want RESOURCE_NOT_EXISTS", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.createOrder(context.Background(), createRequest(2)); !tradeunit.IsCode(err, tradeunit.CodeOutTradeNoUsed) {
		t.Fatalf("another body once the first committed: got %v, want OUT_TRADE_NO_USED", err)
	}
}

// TestCreateMeetingAnOrphanOfAnotherBody: a unit that answers "used" for a
// pending entry holds the key's order (of another body, left by an
// abandoned attempt): the entry is committed to it before the create is
// told "used", so that no later create makes an order of this body.
func TestCreateMeetingAnOrphanOfAnotherBody(t *testing.T) {
	p := newRetryProxy(t, 3, 3, time.Second)
	first := p.ranked[0]
	orphan, err := first.make(createRequest(1))
	if err != nil {
		t.Fatal(err)
	}
	// As a real unit does: one order per key, another body is refused.
	first.create = func(ctx context.Context, r tradeunit.CreateOrderRequest) (*tradeunit.Order, error) {
		if o, _ := first.make(r); o.Amount != r.Amount {
			return nil, tradeunit.Errorf(tradeunit.CodeOutTradeNoUsed, "used")
		}
		return first.make(r)
	}
	if _, _, err := p.createOrder(context.Background(), createRequest(2)); !tradeunit.IsCode(err, tradeunit.CodeOutTradeNoUsed) {
		t.Fatalf("create of another body: got %v, want OUT_TRADE_NO_USED", err)
	}
	if e := p.dialer.shard.get(retryKey); e == nil || e.State != tradeunit.EntryCommitted || e.RecordNo != orphan.OrderNo {
		t.Fatalf("entry %+v: want committed to the unit's order %s", e, orphan.OrderNo)
	}
	// The first unit down now: the key's order is still that one.
	first.set(func(u *fakeUnit) { u.create = noAnswer })
	if _, _, err := p.createOrder(context.Background(), createRequest(2)); !tradeunit.IsCode(err, tradeunit.CodeOutTradeNoUsed) {
		t.Fatalf("another body again: got %v, want OUT_TRADE_NO_USED", err)
	}
	for _, u := range p.ranked[1:] {
		if u.calls != 0 {
			t.Fatalf("unit %d was asked to create: the key has its order", u.id)
		}
	}
}

// TestUnsafeWithoutDirectory: the benchmark baseline's create calls the
// ranked units with no reservation, retrying as order retry does, and so
// cannot keep one order per key.
func TestUnsafeWithoutDirectory(t *testing.T) {
	p := newRetryProxy(t, 3, 3, time.Second)
	p.cfg.UnsafeWithoutDirectory = true
	p.dialer.shard.down = true // not used
	p.ranked[0].create = noAnswer
	first, tries, err := p.createOrder(context.Background(), createRequest(1))
	if err != nil || tries != 2 || p.ranked[1].calls != 1 {
		t.Fatalf("got %+v after %d creates, %v; want the second ranked unit's order", first, tries, err)
	}
	p.ranked[0].create = nil
	again, _, err := p.createOrder(context.Background(), createRequest(1))
	if err != nil || again.OrderNo == first.OrderNo {
		t.Fatalf("repeat: got %+v, %v; want a second order (what the directory prevents)", again, err)
	}
	p.ranked[0].create, p.ranked[1].create, p.ranked[2].create = conflict, nil, nil
	if _, _, err := p.createOrder(context.Background(), createRequest(1)); !tradeunit.IsCode(err, tradeunit.CodeOutTradeNoUsed) {
		t.Fatalf("a unit's definite answer: got %v, want OUT_TRADE_NO_USED", err)
	}
}

// TestConcurrentCreatesShareShardCalls: the directory puts of concurrent
// creates go to the shard together, fewer calls than puts, and each create
// still gets its own order (and a repeat its first order).
func TestConcurrentCreatesShareShardCalls(t *testing.T) {
	p := newRetryProxy(t, 4, 3, time.Second)
	p.dialer.shard.latency = 2 * time.Millisecond // puts pile up behind a call
	const creates = 64
	orders := make([]string, creates)
	var wg sync.WaitGroup
	for i := range creates {
		wg.Go(func() {
			r := createRequest(1)
			r.OutTradeNo = fmt.Sprintf("shared-%03d", i%(creates/2)) // each key twice
			o, _, err := p.createOrder(context.Background(), r)
			if err != nil {
				t.Errorf("create %d: %v", i, err)
				return
			}
			orders[i] = o.OrderNo
		})
	}
	wg.Wait()
	for i := range creates / 2 {
		if orders[i] == "" || orders[i] != orders[i+creates/2] {
			t.Errorf("key %d: orders %q and %q, want one", i, orders[i], orders[i+creates/2])
		}
	}
	p.dialer.shard.mu.Lock()
	calls := p.dialer.shard.puts
	p.dialer.shard.mu.Unlock()
	// Unbatched, each new key costs two puts and each repeat one or more.
	if calls >= creates {
		t.Fatalf("%d shard calls for %d creates (%d keys), want them batched", calls, creates, creates/2)
	}
	t.Logf("%d shard put calls for %d creates of %d keys", calls, creates, creates/2)
}

// TestRefundReservesWithoutARead: a refund of a new out_refund_no costs the
// shard two puts (reserve, commit) and no read; a repeat finds the committed
// entry through its failed put and gets the same refund; another amount is
// OUT_REFUND_NO_USED.
func TestRefundReservesWithoutARead(t *testing.T) {
	p := newRetryProxy(t, 2, 3, time.Second)
	ctx := context.Background()
	o, _, err := p.createOrder(ctx, createRequest(500))
	if err != nil {
		t.Fatal(err)
	}
	shard := p.dialer.shard
	count := func() (puts, reads int) {
		shard.mu.Lock()
		defer shard.mu.Unlock()
		return shard.puts, shard.reads
	}
	puts0, reads0 := count()
	req := tradeunit.CreateRefundRequest{Mchid: "1900000001", OrderNo: o.OrderNo, OutRefundNo: "rf-1",
		Amount: tradeunit.RefundAmount{Refund: 100, Currency: "CNY"}}
	first, err := p.createRefund(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if puts, reads := count(); puts-puts0 != 2 || reads != reads0 {
		t.Errorf("a new refund made %d puts and %d reads, want 2 and 0", puts-puts0, reads-reads0)
	}
	if e := shard.get(tradeunit.MerchantKey{Mchid: req.Mchid, Kind: tradeunit.KeyRefund, Value: "rf-1"}); e == nil ||
		e.State != tradeunit.EntryCommitted || e.RecordNo != o.OrderNo {
		t.Fatalf("entry after the refund: %+v, want committed to %s", e, o.OrderNo)
	}
	again, err := p.createRefund(ctx, req)
	if err != nil || again.RefundID != first.RefundID {
		t.Fatalf("repeated refund: %+v, %v; want refund %s", again, err, first.RefundID)
	}
	other := req
	other.Amount.Refund = 101
	if _, err := p.createRefund(ctx, other); !tradeunit.IsCode(err, tradeunit.CodeOutRefundNoUsed) {
		t.Fatalf("the same out_refund_no with another amount: %v, want OUT_REFUND_NO_USED", err)
	}
}
