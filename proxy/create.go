package proxy

import (
	"context"

	"tradeunit"
	"tradeunit/routing"
	"tradeunit/selection"
)

// createOrder places a new order: it ranks the units that take new orders for
// the merchant's order key (see package selection) and tries them in that
// order, up to MaxCreateAttempts units ("order retry").
//
// A unit that answers decides the outcome, errors included. A unit that
// cannot be reached is skipped. A unit that may have received the create but
// did not answer (a timeout, a connection lost mid-call, a storage fault) may
// have committed it: the next unit's create records that unit in the order's
// abandoned_units, so the orphan it may have left can be found and closed
// when the unit returns. That orphan is the one window in which a merchant
// order number can exist twice; the winning order names the unit holding it.
func (p *Proxy) createOrder(ctx context.Context, r tradeunit.CreateOrderRequest) (*tradeunit.Order, error) {
	r.Normalize()
	if err := r.Validate(); err != nil {
		return nil, err
	}
	table := p.routes.Current()
	units := table.NewOrderCandidates()
	if len(units) == 0 {
		return nil, tradeunit.Errorf(tradeunit.CodeNoUnitAvailable, "no unit takes new orders")
	}
	ranked := p.rankForCreate(r.Mchid+"/"+r.OutTradeNo, units)
	var lastErr error
	for i, id := range ranked {
		if i == p.cfg.MaxCreateAttempts {
			break
		}
		u, _ := table.Unit(id)
		if i > 0 {
			p.log.Info("create retried on another unit", "attempt", i+1, "unit", id, "previous_error", lastErr)
		}
		p.balancer.Record(id)
		o, res, err := callUnit(ctx, p, u, func(ctx context.Context, svc tradeunit.OrderService) (*tradeunit.Order, error) {
			return svc.CreateOrder(ctx, r)
		})
		if err == nil {
			return o, nil
		}
		code := tradeunit.ErrorCode(err)
		if code != tradeunit.CodeUnitUnavailable && code != tradeunit.CodeInternal {
			return nil, err // the unit's definite answer: a caller's mistake or a conflict
		}
		if res.sent || code == tradeunit.CodeInternal {
			r.AbandonedUnits = append(r.AbandonedUnits, id)
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, &tradeunit.Error{
		Code:    tradeunit.CodeNoUnitAvailable,
		Message: "no unit could take the order; retry later with the same out_trade_no",
		Op:      "proxy.createOrder",
		Err:     lastErr,
	}
}

// rankForCreate returns the units in preference order for key.
func (p *Proxy) rankForCreate(key string, units []*routing.Unit) []tradeunit.UnitID {
	cands := make([]selection.Candidate, len(units))
	for i, u := range units {
		cands[i] = selection.Candidate{Unit: u.ID, Weight: u.Weight}
	}
	p.balancer.Weigh(cands)
	return selection.Rank(make([]tradeunit.UnitID, 0, len(cands)), key, cands)
}
