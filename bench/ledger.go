package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"tradeunit"
)

// entry is what the client was last told about one order.
type entry struct {
	no       string
	out      string // the out_trade_no it was created with
	total    int64
	state    tradeunit.TradeState
	refunded int64
	refunds  int
	// uncertain is set when a change got no answer: the order may or may
	// not have changed, so verification accepts either state.
	uncertain bool
}

// ledger holds every acknowledged order. An order is checked out to one
// worker at a time, so the expected state is never ambiguous.
type ledger struct {
	mu      sync.Mutex
	all     []*entry
	notPaid []*entry // NOTPAY, not checked out
	paid    []*entry // SUCCESS/REFUND with something left to refund, not checked out
	seq     atomic.Uint64
}

func (l *ledger) add(e *entry) {
	l.mu.Lock()
	l.all = append(l.all, e)
	l.notPaid = append(l.notPaid, e)
	l.mu.Unlock()
}

// take checks out an order from the NOTPAY or the paid pool, or returns nil.
func (l *ledger) take(paid bool) *entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	pool := &l.notPaid
	if paid {
		pool = &l.paid
	}
	n := len(*pool)
	if n == 0 {
		return nil
	}
	e := (*pool)[n-1]
	*pool = (*pool)[:n-1]
	return e
}

// give returns a checked-out order to the pool its state belongs to.
func (l *ledger) give(e *entry) {
	if e.uncertain {
		return // never touched again: its expected state is open
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case e.state == tradeunit.StateNotPay:
		l.notPaid = append(l.notPaid, e)
	case e.state.Paid() && e.refunded < e.total:
		l.paid = append(l.paid, e)
	}
}

// any returns some acknowledged order, for queries, or nil. Its fields
// other than no and out belong to whoever has it checked out.
func (l *ledger) any() *entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.all) == 0 {
		return nil
	}
	return l.all[int(l.seq.Add(1)%uint64(len(l.all)))]
}

func (l *ledger) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.all)
}

// Verification is the outcome of reading every acknowledged order back.
type Verification struct {
	Orders     int      `json:"orders"`
	Lost       int      `json:"lost"`       // acknowledged, now not found
	Mismatched int      `json:"mismatched"` // found with another state or refunded sum than last acknowledged
	Unreadable int      `json:"unreadable"` // could not be read (unit down)
	Examples   []string `json:"examples,omitempty"`
}

// OK reports whether every order was found as last acknowledged.
func (v Verification) OK() bool { return v.Lost == 0 && v.Mismatched == 0 && v.Unreadable == 0 }

// verify reads every acknowledged order back with up to conc readers.
func (l *ledger) verify(ctx context.Context, t Target, conc int) Verification {
	l.mu.Lock()
	all := append([]*entry(nil), l.all...)
	l.mu.Unlock()
	var (
		mu sync.Mutex
		v  = Verification{Orders: len(all)}
		wg sync.WaitGroup
		ch = make(chan *entry)
	)
	note := func(kind *int, format string, args ...any) {
		mu.Lock()
		*kind++
		if len(v.Examples) < 10 {
			v.Examples = append(v.Examples, fmt.Sprintf(format, args...))
		}
		mu.Unlock()
	}
	for i := 0; i < conc; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e := range ch {
				state, refunded, err := t.Query(ctx, e.no)
				switch {
				case tradeunit.IsCode(err, tradeunit.CodeNotFound):
					note(&v.Lost, "order %s: acknowledged, not found", e.no)
				case err != nil:
					note(&v.Unreadable, "order %s: %v", e.no, err)
				case e.uncertain:
				case state != e.state || refunded != e.refunded:
					note(&v.Mismatched, "order %s: got %s refunded %d, last acknowledged %s refunded %d",
						e.no, state, refunded, e.state, e.refunded)
				}
			}
		}()
	}
	for _, e := range all {
		ch <- e
	}
	close(ch)
	wg.Wait()
	return v
}
