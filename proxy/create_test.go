package proxy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"tradeunit"
	"tradeunit/routing"
	"tradeunit/selection"
)

// fakeUnit is one unit's logic service as the proxy's connection sees it:
// its create answers with what the test says, and it counts its calls.
type fakeUnit struct {
	tradeunit.OrderService // nil: only CreateOrder is called in these tests
	id                     tradeunit.UnitID

	mu          sync.Mutex
	create      func(ctx context.Context, r tradeunit.CreateOrderRequest) (*tradeunit.Order, error)
	down        bool // the connection is known to be down
	calls       int
	reconnected int
	last        tradeunit.CreateOrderRequest
}

func (u *fakeUnit) CreateOrder(ctx context.Context, r tradeunit.CreateOrderRequest) (*tradeunit.Order, error) {
	u.mu.Lock()
	u.calls++
	u.last = r
	create := u.create
	u.mu.Unlock()
	return create(ctx, r)
}

func (u *fakeUnit) Down() bool { u.mu.Lock(); defer u.mu.Unlock(); return u.down }

func (u *fakeUnit) Reconnect() { u.mu.Lock(); defer u.mu.Unlock(); u.reconnected++ }

// fakeDialer connects to fake units by address; an address it does not
// know cannot be dialed.
type fakeDialer struct{ units map[string]*fakeUnit }

func (d *fakeDialer) Conn(addr string) (tradeunit.LogicConn, error) {
	if u := d.units[addr]; u != nil {
		return u, nil
	}
	return nil, fmt.Errorf("dial %s: no such replica", addr)
}
func (d *fakeDialer) Retain(map[string]bool) []string { return nil }
func (d *fakeDialer) Close() error                    { return nil }

func addrOf(id tradeunit.UnitID) string { return fmt.Sprintf("10.0.0.%d:9000", id) }

// The answers a fake unit can give.
var (
	created = func(ctx context.Context, r tradeunit.CreateOrderRequest) (*tradeunit.Order, error) {
		return &tradeunit.Order{OrderNo: "created", Mchid: r.Mchid, OutTradeNo: r.OutTradeNo, AbandonedUnits: r.AbandonedUnits}, nil
	}
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
	hang = func(ctx context.Context, _ tradeunit.CreateOrderRequest) (*tradeunit.Order, error) {
		<-ctx.Done()
		return nil, tradeunit.NoAnswer("fake", "deadline", ctx.Err())
	}
)

// retryProxy starts a proxy over n fake units and returns them in the
// order its plan tries them for the test's order key.
func retryProxy(t *testing.T, n, attempts int) (*Proxy, []*fakeUnit, *fakeDialer) {
	t.Helper()
	table := &routing.Table{Revision: 1}
	dialer := &fakeDialer{units: map[string]*fakeUnit{}}
	byID := map[tradeunit.UnitID]*fakeUnit{}
	for i := 1; i <= n; i++ {
		id := tradeunit.UnitID(i)
		table.Units = append(table.Units, routing.Unit{ID: id, LogicAddrs: []string{addrOf(id)}, Available: true, AcceptNew: true})
		byID[id] = &fakeUnit{id: id, create: created}
		dialer.units[addrOf(id)] = byID[id]
	}
	routes, err := routing.NewMemoryTable(table)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.MaxCreateAttempts = attempts
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
	ranked := make([]*fakeUnit, len(order))
	for i, id := range order {
		ranked[i] = byID[id]
	}
	return p, ranked, dialer
}

func createRequest() tradeunit.CreateOrderRequest {
	return tradeunit.CreateOrderRequest{Mchid: "1900000001", OutTradeNo: "retry-0001", Description: "d",
		Amount: tradeunit.Amount{Total: 1}}
}

// TestCreateOrderRetry drives create's order retry over fake units that
// answer, fail or stay silent, in the order the plan ranks them.
func TestCreateOrderRetry(t *testing.T) {
	type answer = func(context.Context, tradeunit.CreateOrderRequest) (*tradeunit.Order, error)
	tests := []struct {
		name     string
		attempts int      // MaxCreateAttempts
		answers  []answer // of the ranked units; the rest create
		undial   []int    // ranks whose address cannot be dialed
		down     []int    // ranks whose connection is known down
		wantCode tradeunit.Code
		wantWin  int   // rank that created the order (when wantCode is "")
		wantAbd  []int // ranks recorded in abandoned_units
		wantCall []int // calls per rank
		wantTry  int   // attempts reported
	}{
		{name: "first unit creates", attempts: 3, answers: []answer{created},
			wantWin: 0, wantCall: []int{1, 0, 0, 0}, wantTry: 1},
		{name: "a definite answer stops", attempts: 3, answers: []answer{conflict},
			wantCode: tradeunit.CodeOutTradeNoUsed, wantCall: []int{1, 0, 0, 0}, wantTry: 1},
		{name: "no answer moves on and is recorded", attempts: 3, answers: []answer{noAnswer, created},
			wantWin: 1, wantAbd: []int{0}, wantCall: []int{1, 1, 0, 0}, wantTry: 2},
		{name: "a lost commit moves on and is recorded", attempts: 3, answers: []answer{lostCommit, created},
			wantWin: 1, wantAbd: []int{0}, wantCall: []int{1, 1, 0, 0}, wantTry: 2},
		{name: "a fault of the unit moves on and is recorded", attempts: 3, answers: []answer{fault, created},
			wantWin: 1, wantAbd: []int{0}, wantCall: []int{1, 1, 0, 0}, wantTry: 2},
		{name: "nothing written moves on and is not recorded", attempts: 3, answers: []answer{readOnly, noAnswer, created},
			wantWin: 2, wantAbd: []int{1}, wantCall: []int{1, 1, 1, 0}, wantTry: 3},
		{name: "the attempt limit holds", attempts: 2, answers: []answer{noAnswer, readOnly, created},
			wantCode: tradeunit.CodeNoUnitAvailable, wantCall: []int{1, 1, 0, 0}, wantTry: 2},
		{name: "a unit that cannot be dialed uses no attempt but is recorded", attempts: 2, undial: []int{0},
			answers: []answer{created, noAnswer, created}, wantWin: 2, wantAbd: []int{0, 1}, wantCall: []int{0, 1, 1, 0}, wantTry: 2},
		{name: "every unit passed over is recorded", attempts: 4, answers: []answer{noAnswer, lostCommit, fault, created},
			wantWin: 3, wantAbd: []int{0, 1, 2}, wantCall: []int{1, 1, 1, 1}, wantTry: 4},
		{name: "a down unit gets one reconnect, which counts", attempts: 3, down: []int{0}, answers: []answer{noAnswer, created},
			wantWin: 1, wantAbd: []int{0}, wantCall: []int{1, 1, 0, 0}, wantTry: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, ranked, dialer := retryProxy(t, 4, tt.attempts)
			for i, a := range tt.answers {
				ranked[i].create = a
			}
			for _, i := range tt.undial {
				delete(dialer.units, addrOf(ranked[i].id))
			}
			for _, i := range tt.down {
				ranked[i].down = true
			}
			o, tries, err := p.createOrder(context.Background(), createRequest())
			if got := tradeunit.ErrorCode(err); got != tt.wantCode {
				t.Fatalf("got %v, want code %q", err, tt.wantCode)
			}
			if tries != tt.wantTry {
				t.Errorf("attempts: got %d, want %d", tries, tt.wantTry)
			}
			var calls []int
			for _, u := range ranked {
				calls = append(calls, u.calls)
			}
			if !slices.Equal(calls, tt.wantCall) {
				t.Errorf("calls per ranked unit: got %v, want %v", calls, tt.wantCall)
			}
			for _, i := range tt.down {
				if ranked[i].reconnected == 0 {
					t.Errorf("down unit at rank %d was not asked to reconnect", i)
				}
			}
			if tt.wantCode != "" {
				return
			}
			var want []tradeunit.UnitID
			for _, i := range tt.wantAbd {
				want = append(want, ranked[i].id)
			}
			if winner := ranked[tt.wantWin]; !slices.Equal(winner.last.AbandonedUnits, want) || !slices.Equal(o.AbandonedUnits, want) {
				t.Errorf("abandoned units: sent %v, order %v, want %v", winner.last.AbandonedUnits, o.AbandonedUnits, want)
			}
		})
	}
}

// TestCreateOrderStopsForACancelledCaller: a caller that gives up stops the
// retry at once; the unit that was called is recorded nowhere (no order
// was returned) and no further unit is called.
func TestCreateOrderStopsForACancelledCaller(t *testing.T) {
	p, ranked, _ := retryProxy(t, 4, 3)
	ranked[0].create = hang
	ctx, cancel := context.WithCancel(context.Background())
	called := make(chan struct{})
	ranked[0].create = func(ctx context.Context, r tradeunit.CreateOrderRequest) (*tradeunit.Order, error) {
		close(called)
		return hang(ctx, r)
	}
	go func() { <-called; cancel() }()
	_, tries, err := p.createOrder(ctx, createRequest())
	if tradeunit.ErrorCode(err) != tradeunit.CodeNoUnitAvailable || tries != 1 {
		t.Fatalf("got %v after %d attempts, want NO_UNIT_AVAILABLE after 1", err, tries)
	}
	for i, u := range ranked[1:] {
		if u.calls != 0 {
			t.Errorf("unit at rank %d called %d times after the caller gave up", i+1, u.calls)
		}
	}
}
