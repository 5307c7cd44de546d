package proxy

import (
	"context"
	"sync"

	"tradeunit"
	"tradeunit/routing"
)

// findAcross looks for a merchant's record by a key that names no unit
// (out_trade_no, out_refund_no). If rankKey is set it first asks the unit
// that rankKey ranks first, where a create lands while the units are stable;
// then it asks every other unit at once. The result is found if any unit has
// it; not found only if every unit answered that it has not; UNIT_UNAVAILABLE
// if a unit that might hold it could not be asked.
func findAcross[T any](ctx context.Context, p *Proxy, rankKey, what string, get unitCall[*T], pick func([]*T) *T) (*T, error) {
	table := p.routes.Current()
	var (
		mu          sync.Mutex
		found       []*T
		unreachable error
		asked       = map[tradeunit.UnitID]bool{}
	)
	ask := func(id tradeunit.UnitID) {
		u, _ := table.Unit(id)
		v, _, err := callUnit(ctx, p, u, get)
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
	if rankKey != "" && len(table.Units) > 0 {
		first := p.rankForCreate(rankKey, unitPtrs(table))[0]
		asked[first] = true
		if ask(first); len(found) > 0 {
			return found[0], nil
		}
	}
	var wg sync.WaitGroup
	for _, u := range table.Units {
		if asked[u.ID] {
			continue
		}
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

func unitPtrs(t *routing.Table) []*routing.Unit {
	out := make([]*routing.Unit, len(t.Units))
	for i := range t.Units {
		out[i] = &t.Units[i]
	}
	return out
}

func pickFirst[T any](v []*T) *T { return v[0] }
