package e2e

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tradeunit"
)

// haOrder is what the client was last told about one of its orders.
type haOrder struct {
	no, out string
	unit    tradeunit.UnitID
	state   tradeunit.TradeState // last acknowledged
	// payPending is set when a pay got no acknowledgement: the client
	// repeats it with the same payment id (idempotent) until it gets one,
	// so that in the end every order's state is known exactly.
	payPending bool
	abandoned  []tradeunit.UnitID
}

// haEvent is one request of the load, as it ended.
type haEvent struct {
	start, end time.Time
	op         string // create, pay, query, query-eventual, lookup (by out_trade_no)
	unit       tradeunit.UnitID
	out        string // the out_trade_no of a create or a lookup
	ok         bool
	status     int
	code       string
	replica    bool // a read served by a replica
	degraded   bool
	staleness  time.Duration
	stale      bool // a read older than the client's last acknowledged state
}

// haLoad drives creates, pays and queries through the proxy with its own
// log of every acknowledgement (each worker owns its orders, so the state
// it expects is never ambiguous).
type haLoad struct {
	c        *haCluster
	lookups  bool
	payPause time.Duration
	stop     atomic.Bool
	wg       sync.WaitGroup

	mu     sync.Mutex
	orders []*haOrder
	events []haEvent
	errs   []string
	// unanswered are the out_trade_nos of creates answered with anything
	// but an order (or nothing): a client repeats them.
	unanswered []string
}

// haLoadOptions shape the load's mix.
type haLoadOptions struct {
	// lookups makes a tenth of the requests lookups by out_trade_no
	// (through the merchant-key directory) instead of queries by number.
	lookups bool
	// payPause is how long a worker waits before it repeats a pay that
	// got no acknowledgement (default 10ms). A client that backs off
	// longer keeps one order's retries, each answered at once while the
	// unit is unavailable, from outnumbering the rest of its traffic.
	payPause time.Duration
}

func startHALoad(c *haCluster, workers int) *haLoad {
	return startHALoadWith(c, workers, haLoadOptions{})
}

func startHALoadWith(c *haCluster, workers int, o haLoadOptions) *haLoad {
	if o.payPause == 0 {
		o.payPause = 10 * time.Millisecond
	}
	l := &haLoad{c: c, lookups: o.lookups, payPause: o.payPause}
	for w := 0; w < workers; w++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.work(w)
		}()
	}
	return l
}

func (l *haLoad) work(w int) {
	var mine []*haOrder
	rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
	for i := 0; !l.stop.Load(); i++ {
		switch n := rng.IntN(100); {
		case n < 40 || len(mine) == 0:
			if o := l.create(fmt.Sprintf("ha-%d-%d-%d", w, i, time.Now().UnixNano()%1e9)); o != nil {
				mine = append(mine, o)
			}
		case n < 70:
			var o *haOrder
			for _, m := range mine {
				if m.payPending {
					o = m
					break
				}
			}
			if o == nil {
				o = mine[rng.IntN(len(mine))]
				if o.state != tradeunit.StateNotPay {
					continue
				}
			}
			l.pay(o)
		case l.lookups && n < 80:
			l.lookup(mine[rng.IntN(len(mine))])
		default:
			l.query(mine[rng.IntN(len(mine))], n >= 90)
		}
	}
	l.mu.Lock()
	l.orders = append(l.orders, mine...)
	l.mu.Unlock()
}

func (l *haLoad) record(e haEvent) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

func (l *haLoad) fail(format string, args ...any) {
	l.mu.Lock()
	l.errs = append(l.errs, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

func (l *haLoad) create(out string) *haOrder {
	e := haEvent{start: time.Now(), op: "create", out: out}
	r, err := l.c.api.try("POST", "/v3/orders", createBody(out, 100))
	e.end = time.Now()
	if err != nil {
		l.fail("create %s: %v", out, err)
		l.mu.Lock()
		l.unanswered = append(l.unanswered, out)
		l.mu.Unlock()
		return nil
	}
	e.status, e.code, e.ok = r.status, r.code(), r.status == 200
	var o *haOrder
	if e.ok {
		e.unit = unitOf(r)
		o = &haOrder{no: r.str("order_no"), out: out, unit: e.unit, state: tradeunit.StateNotPay, abandoned: abandonedOf(r)}
	} else {
		l.mu.Lock()
		l.unanswered = append(l.unanswered, out)
		l.mu.Unlock()
	}
	l.record(e)
	return o
}

// lookup finds o by its out_trade_no: the directory's entry, then the
// order on its unit.
func (l *haLoad) lookup(o *haOrder) {
	e := haEvent{start: time.Now(), op: "lookup", unit: o.unit, out: o.out}
	r, err := l.c.api.try("GET", "/v3/orders/out-trade-no/"+o.out, nil)
	e.end = time.Now()
	if err != nil {
		l.fail("lookup %s: %v", o.out, err)
		return
	}
	e.status, e.code, e.ok = r.status, r.code(), r.status == 200
	if e.ok && r.str("order_no") != o.no {
		l.fail("lookup of %s: got order %s, acknowledged %s", o.out, r.str("order_no"), o.no)
	}
	l.record(e)
}

func (l *haLoad) pay(o *haOrder) {
	e := haEvent{start: time.Now(), op: "pay", unit: o.unit}
	r, err := l.c.api.try("POST", "/v3/orders/"+o.no+"/pay", map[string]any{"payment_id": "pay-" + o.no})
	e.end = time.Now()
	if err != nil {
		l.fail("pay %s: %v", o.no, err)
		o.payPending = true
		return
	}
	e.status, e.code, e.ok = r.status, r.code(), r.status == 200
	if e.ok {
		o.state, o.payPending = tradeunit.TradeState(r.str("trade_state")), false
	} else {
		o.payPending = true
		time.Sleep(l.payPause) // it is tried again first
	}
	l.record(e)
}

func (l *haLoad) query(o *haOrder, eventual bool) {
	e := haEvent{start: time.Now(), op: "query", unit: o.unit}
	path := "/v3/orders/" + o.no
	if eventual {
		e.op, path = "query-eventual", path+"?consistency=eventual"
	}
	r, err := l.c.api.try("GET", path, nil)
	e.end = time.Now()
	if err != nil {
		l.fail("query %s: %v", o.no, err)
		return
	}
	e.status, e.code, e.ok = r.status, r.code(), r.status == 200
	if e.ok {
		e.replica = r.str("read_from") == "replica"
		e.degraded, _ = r.body["degraded"].(bool)
		ms, _ := r.body["staleness_ms"].(float64)
		e.staleness = time.Duration(ms * float64(time.Millisecond))
		e.stale = !o.payPending && tradeunit.TradeState(r.str("trade_state")) != o.state
		if e.stale && !e.replica {
			l.fail("real-time read of %s from the primary: got %s, last acknowledged %s", o.no, r.str("trade_state"), o.state)
		}
	}
	l.record(e)
}

// since returns a copy of the events recorded from the i-th on, and how
// many there are: a cursor for watching the load as it runs.
func (l *haLoad) since(i int) ([]haEvent, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events[min(i, len(l.events)):]), len(l.events)
}

// changes counts the creates and pays acknowledged on unit u that started
// at or after from.
func (l *haLoad) changes(u tradeunit.UnitID, from time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	return countEvents(l.events, "create", u, from, now).ok + countEvents(l.events, "pay", u, from, now).ok
}

// waitChanges waits until n creates and pays that started at or after from
// have been acknowledged on unit u.
func (l *haLoad) waitChanges(t *testing.T, timeout time.Duration, n int, u tradeunit.UnitID, from time.Time, what string) {
	t.Helper()
	waitFor(t, timeout, fmt.Sprintf("%d changes acknowledged on unit %d %s", n, u, what), func() bool {
		return l.changes(u, from) >= n
	})
}

// halt stops the workers and returns every order the client was told of
// and every request.
func (l *haLoad) halt() ([]*haOrder, []haEvent, []string) {
	l.stop.Store(true)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.orders, l.events, l.errs
}

func abandonedOf(r response) []tradeunit.UnitID {
	list, _ := r.body["abandoned_units"].([]any)
	var out []tradeunit.UnitID
	for _, v := range list {
		f, _ := v.(float64)
		out = append(out, tradeunit.UnitID(f))
	}
	return out
}

// haCount counts the events of one op (and unit, if not 0) that started
// in [from, to).
type haCount struct{ total, ok, replica, degraded, stale int }

func countEvents(events []haEvent, op string, unit tradeunit.UnitID, from, to time.Time) haCount {
	var c haCount
	for _, e := range events {
		if e.op != op || unit != 0 && e.unit != unit || e.start.Before(from) || !e.start.Before(to) {
			continue
		}
		c.total++
		if e.ok {
			c.ok++
		}
		if e.replica {
			c.replica++
		}
		if e.degraded {
			c.degraded++
		}
		if e.stale {
			c.stale++
		}
	}
	return c
}

func share(n, of int) float64 {
	if of == 0 {
		return 0
	}
	return 100 * float64(n) / float64(of)
}
