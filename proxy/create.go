package proxy

import (
	"context"

	"tradeunit"
	"tradeunit/selection"
)

// createOrder places a new order: selection ranks the units that may take it
// (its partition, health, canary, load and latency; see package selection)
// and the proxy tries them in that order, up to MaxCreateAttempts units
// ("order retry").
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
	var buf [selection.MaxPick]tradeunit.UnitID
	ranked, err := p.plan.Load().Pick(buf[:0], r.Mchid, r.OutTradeNo, p.cfg.MaxCreateAttempts)
	if err != nil {
		return nil, err
	}
	p.metrics.selected.WithLabelValues(ranked[0].String()).Inc()
	var lastErr error
	for i, id := range ranked {
		u, ok := table.Unit(id)
		if !ok {
			continue // removed from the table since the plan was built
		}
		if i > 0 {
			p.metrics.createRetries.Inc()
			p.log.Info("create retried on another unit", "attempt", i+1, "unit", id, "previous_error", lastErr)
		}
		p.balancer.Record(id)
		o, res, err := callUnit(ctx, p, u, "create", func(ctx context.Context, svc tradeunit.OrderService) (*tradeunit.Order, error) {
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
