package proxy

import (
	"context"
	"slices"

	"tradeunit"
	"tradeunit/selection"
)

// createOrder places a new order: selection ranks the units that may take it
// (its partition, health, canary, load and latency; see package selection)
// and the proxy tries them in that order, until MaxCreateAttempts units
// were called ("order retry"); a unit skipped without a call (no replica
// could be dialed) does not use up an attempt, while one whose replicas are
// all known down gets one quick reconnect and call, which does. It returns
// how many units it called.
//
// A unit's definite answer decides the outcome, errors included, except a
// definite "unavailable, nothing written" (its storage is read-only, failing
// over, out of connections...), after which the next unit is tried. Any unit
// passed over that may hold this order — it may have received this create
// but gave no answer or an unknown outcome (a timeout, a connection lost
// mid-call or mid-commit), or it could not be reached now but may hold an
// earlier attempt of the same create whose answer was lost — is recorded in
// the winning order's abandoned_units, so an orphan it may hold can be found
// and closed when the unit returns. A unit that answered "nothing written"
// holds nothing of this attempt and is not recorded.
func (p *Proxy) createOrder(ctx context.Context, r tradeunit.CreateOrderRequest) (_ *tradeunit.Order, attempts int, _ error) {
	r.Normalize()
	if err := r.Validate(); err != nil {
		return nil, 0, err
	}
	table := p.routes.Current()
	plan := p.plan.Load()
	var buf, wide [selection.MaxPick]tradeunit.UnitID
	ranked, err := plan.Pick(buf[:0], r.Mchid, r.OutTradeNo, p.cfg.MaxCreateAttempts)
	if err != nil {
		return nil, 0, err
	}
	p.metrics.selected.WithLabelValues(ranked[0].String()).Inc()
	var lastErr error
	for i := 0; i < len(ranked) && attempts < p.cfg.MaxCreateAttempts; i++ {
		if i == len(ranked)-1 && len(ranked) < selection.MaxPick {
			// Units skipped without a call used no attempt: let the next
			// ones in the key's order follow.
			if more, err := plan.Pick(wide[:0], r.Mchid, r.OutTradeNo, selection.MaxPick); err == nil {
				ranked = appendNew(ranked, more)
			}
		}
		id := ranked[i]
		u, ok := table.Unit(id)
		if !ok {
			continue // removed from the table since the plan was built
		}
		if attempts > 0 {
			p.metrics.createRetries.Inc()
			p.log.Info("create retried on another unit", "attempt", attempts+1, "unit", id, "previous_error", lastErr)
		}
		p.balancer.Record(id)
		o, res, err := callUnit(ctx, p, u, "create", func(ctx context.Context, svc tradeunit.OrderService) (*tradeunit.Order, error) {
			return svc.CreateOrder(ctx, r)
		})
		if res.tried {
			attempts++
		}
		if err == nil {
			return o, attempts, nil
		}
		code := tradeunit.ErrorCode(err)
		if code != tradeunit.CodeUnitUnavailable && code != tradeunit.CodeInternal {
			return nil, attempts, err // the unit's definite answer: a caller's mistake or a conflict
		}
		if !res.tried || tradeunit.OutcomeUnknown(err) {
			r.AbandonedUnits = append(r.AbandonedUnits, id)
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, attempts, &tradeunit.Error{
		Code:    tradeunit.CodeNoUnitAvailable,
		Message: "no unit could take the order; retry later with the same out_trade_no",
		Op:      "proxy.createOrder",
		Err:     lastErr,
	}
}

// appendNew appends the units of more that ranked does not hold yet.
func appendNew(ranked, more []tradeunit.UnitID) []tradeunit.UnitID {
	for _, id := range more {
		if !slices.Contains(ranked, id) {
			ranked = append(ranked, id)
		}
	}
	return ranked
}
