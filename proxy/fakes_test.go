package proxy

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"tradeunit"
	"tradeunit/orderno"
)

// fakeUnit is one unit's logic service as the proxy's connection sees it:
// it holds at most one order per merchant order number, as a real unit's
// unique key does, settles attempts, and answers creates with what the test
// says.
type fakeUnit struct {
	tradeunit.OrderService // nil: methods not listed here are not called
	id                     tradeunit.UnitID

	mu          sync.Mutex
	create      func(ctx context.Context, r tradeunit.CreateOrderRequest) (*tradeunit.Order, error) // nil: make the order
	supersede   func(ctx context.Context) error                                                     // nil: settle it
	down        bool                                                                                // the connection is known to be down
	calls       int
	reconnected int
	last        tradeunit.CreateOrderRequest
	orders      map[string]*tradeunit.Order  // by out_trade_no
	refunds     map[string]*tradeunit.Refund // by out_refund_no
	superseded  map[uint64]bool
	seq         int
}

func newFakeUnit(id tradeunit.UnitID) *fakeUnit {
	return &fakeUnit{id: id, orders: map[string]*tradeunit.Order{}, refunds: map[string]*tradeunit.Refund{}, superseded: map[uint64]bool{}}
}

func (u *fakeUnit) CreateOrder(ctx context.Context, r tradeunit.CreateOrderRequest) (*tradeunit.Order, error) {
	u.mu.Lock()
	u.calls++
	u.last = r
	create := u.create
	u.mu.Unlock()
	if create != nil {
		return create(ctx, r)
	}
	return u.make(r)
}

// make is what a unit does with a create: one order per key, a superseded
// attempt refused.
func (u *fakeUnit) make(r tradeunit.CreateOrderRequest) (*tradeunit.Order, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if o := u.orders[r.OutTradeNo]; o != nil {
		return o, nil
	}
	if u.superseded[r.Attempt] {
		return nil, tradeunit.Errorf(tradeunit.CodeAttemptSuperseded, "superseded")
	}
	u.seq++
	no, err := orderno.New(u.id, time.Now(), uint64(u.seq))
	if err != nil {
		return nil, err
	}
	o := &tradeunit.Order{OrderNo: no.String(), Mchid: r.Mchid, OutTradeNo: r.OutTradeNo,
		Description: r.Description, Amount: r.Amount, State: tradeunit.StateNotPay, Attempt: r.Attempt, AbandonedUnits: r.AbandonedUnits}
	u.orders[r.OutTradeNo] = o
	return o, nil
}

func (u *fakeUnit) SupersedeAttempt(ctx context.Context, mchid, outTradeNo string, attempt uint64) (*tradeunit.Order, error) {
	u.mu.Lock()
	supersede := u.supersede
	u.mu.Unlock()
	if supersede != nil {
		if err := supersede(ctx); err != nil {
			return nil, err
		}
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if o := u.orders[outTradeNo]; o != nil {
		return o, nil
	}
	u.superseded[attempt] = true
	return nil, tradeunit.Errorf(tradeunit.CodeNotFound, "none")
}

// CreateRefund makes one refund per out_refund_no, of any order.
func (u *fakeUnit) CreateRefund(ctx context.Context, r tradeunit.CreateRefundRequest) (*tradeunit.Refund, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.calls++
	if f := u.refunds[r.OutRefundNo]; f != nil {
		return f, nil
	}
	f := &tradeunit.Refund{RefundID: fmt.Sprintf("refund-%d", len(u.refunds)+1), Mchid: r.Mchid, OrderNo: r.OrderNo,
		OutRefundNo: r.OutRefundNo, Amount: r.Amount}
	u.refunds[r.OutRefundNo] = f
	return f, nil
}

func (u *fakeUnit) Refund(ctx context.Context, mchid, outRefundNo string) (*tradeunit.Refund, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if f := u.refunds[outRefundNo]; f != nil && f.Mchid == mchid {
		return f, nil
	}
	return nil, tradeunit.Errorf(tradeunit.CodeNotFound, "no refund %s", outRefundNo)
}

func (u *fakeUnit) Order(ctx context.Context, mchid, orderNo string) (*tradeunit.Order, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, o := range u.orders {
		if o.OrderNo == orderNo && o.Mchid == mchid {
			return o, nil
		}
	}
	return nil, tradeunit.Errorf(tradeunit.CodeNotFound, "no order %s", orderNo)
}

func (u *fakeUnit) Down() bool { u.mu.Lock(); defer u.mu.Unlock(); return u.down }

func (u *fakeUnit) Reconnect() { u.mu.Lock(); defer u.mu.Unlock(); u.reconnected++ }

// Silent does nothing: the fakes' state is what each test scripts.
func (u *fakeUnit) Silent() {}

func (u *fakeUnit) set(f func(u *fakeUnit)) { u.mu.Lock(); defer u.mu.Unlock(); f(u) }

// fakeShard is a directory shard held in memory, with the compare-and-swap
// of tradeunit.DirectoryStore.
type fakeShard struct {
	mu      sync.Mutex
	entries map[tradeunit.MerchantKey]*tradeunit.DirectoryEntry
	down    bool          // no answer at all
	refuse  bool          // reads answer; writes are refused, nothing written
	latency time.Duration // of every Put: a storage commit's
	puts    int
	reads   int // calls of Entry
}

func newFakeShard() *fakeShard {
	return &fakeShard{entries: map[tradeunit.MerchantKey]*tradeunit.DirectoryEntry{}}
}

func (s *fakeShard) Entry(ctx context.Context, key tradeunit.MerchantKey) (*tradeunit.DirectoryEntry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	if s.down {
		return nil, tradeunit.NoAnswer("fake", "shard down", errors.New("down"))
	}
	if e := s.entries[key]; e != nil {
		return e.Clone(), nil
	}
	return nil, tradeunit.Errorf(tradeunit.CodeNotFound, "no entry")
}

func (s *fakeShard) Put(ctx context.Context, entries []*tradeunit.DirectoryEntry) []tradeunit.PutResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	time.Sleep(s.latency)
	s.puts++
	out := make([]tradeunit.PutResult, len(entries))
	for i, e := range entries {
		if s.down {
			out[i].Err = tradeunit.NoAnswer("fake", "shard down", errors.New("down"))
			continue
		}
		if s.refuse {
			out[i].Err = tradeunit.Unavailable("fake", "shard storage read-only; nothing written", nil)
			continue
		}
		cur := s.entries[e.Key]
		curVersion := int64(0)
		if cur != nil {
			curVersion = cur.Version
		}
		kept := cur == nil || cur.State == tradeunit.EntryPending || e.State == tradeunit.EntryCommitted && e.RecordNo == cur.RecordNo
		if e.Version != curVersion+1 || !kept {
			out[i] = tradeunit.PutResult{Entry: cur.Clone(), Err: fmt.Errorf("fake: %w", tradeunit.ErrVersionConflict)}
			continue
		}
		s.entries[e.Key] = e.Clone()
		out[i] = tradeunit.PutResult{Entry: e.Clone()}
	}
	return out
}

func (s *fakeShard) Abandoned(context.Context, tradeunit.MerchantKey, int) ([]*tradeunit.DirectoryEntry, error) {
	return nil, errors.New("not used by the proxy")
}

func (s *fakeShard) Down() bool { return false }
func (s *fakeShard) Reconnect() {}
func (s *fakeShard) Silent()    {}

func (s *fakeShard) get(key tradeunit.MerchantKey) *tradeunit.DirectoryEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.entries[key].Clone()
}

// fakeDialer connects to fake units and one fake shard by address; an
// address it does not know cannot be dialed.
type fakeDialer struct {
	mu    sync.Mutex
	units map[string]*fakeUnit
	shard *fakeShard
}

func (d *fakeDialer) Conn(addr string) (tradeunit.LogicConn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if u := d.units[addr]; u != nil {
		return u, nil
	}
	return nil, fmt.Errorf("dial %s: no such replica", addr)
}

func (d *fakeDialer) Directory(addr string) (tradeunit.DirectoryConn, error) {
	if addr == shardAddr {
		return d.shard, nil
	}
	return nil, fmt.Errorf("dial %s: no such shard", addr)
}

func (d *fakeDialer) Retain(map[string]bool) []string { return nil }
func (d *fakeDialer) Close() error                    { return nil }

func (d *fakeDialer) undial(addr string) { d.mu.Lock(); defer d.mu.Unlock(); delete(d.units, addr) }

const shardAddr = "10.0.9.1:9000"
