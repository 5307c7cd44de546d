package proxy

import (
	"context"
	"sync"

	"tradeunit"
)

// findAcross looks for a merchant's record by a key that names no unit
// (out_trade_no, out_refund_no) by asking every unit at once. It must ask
// them all even when the unit a create would try first has it: that unit may
// hold the orphan of a create whose outcome was unknown, and the winner —
// the order pick prefers — is elsewhere. The result is found if any unit has
// it; not found only if every unit answered that it has not; UNIT_UNAVAILABLE
// if a unit that might hold it could not be asked.
func findAcross[T any](ctx context.Context, p *Proxy, what, op string, get unitCall[*T], pick func([]*T) *T) (*T, error) {
	table := p.routes.Current()
	var (
		mu          sync.Mutex
		found       []*T
		unreachable error
	)
	ask := func(id tradeunit.UnitID) {
		u, _ := table.Unit(id)
		v, _, err := callUnit(ctx, p, u, op, get)
		mu.Lock()
		defer mu.Unlock()
		switch tradeunit.ErrorCode(err) {
		case "":
			found = append(found, v)
		case tradeunit.CodeNotFound:
		default:
			unreachable = err
		}
	}
	var wg sync.WaitGroup
	for _, u := range table.Units {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ask(u.ID)
		}()
	}
	wg.Wait()
	switch {
	case len(found) > 0:
		return pick(found), nil
	case unreachable != nil:
		return nil, &tradeunit.Error{
			Code:    tradeunit.CodeUnitUnavailable,
			Message: "a unit that may hold " + what + " is unavailable; retry later",
			Op:      "proxy.findAcross",
			Err:     unreachable,
		}
	}
	return nil, tradeunit.Errorf(tradeunit.CodeNotFound, "%s does not exist", what)
}

// pickOrder chooses among orders found for one out_trade_no in several units,
// which happens only when a create with an unknown outcome left an orphan:
// the winner is the order that records the others as abandoned.
func pickOrder(orders []*tradeunit.Order) *tradeunit.Order {
	best := orders[0]
	for _, o := range orders[1:] {
		if len(o.AbandonedUnits) > len(best.AbandonedUnits) ||
			len(o.AbandonedUnits) == len(best.AbandonedUnits) && o.CreateTime.After(best.CreateTime) {
			best = o
		}
	}
	return best
}

func pickFirst[T any](v []*T) *T { return v[0] }
