package proxy

import (
	"context"
	"errors"
	"time"

	"tradeunit"
	"tradeunit/orderno"
	"tradeunit/replicas"
	"tradeunit/routing"
)

// unitCall is one call to a unit's logic service.
type unitCall[T any] func(ctx context.Context, svc tradeunit.OrderService) (T, error)

// callResult says how a call to a unit ended, beyond its error.
type callResult struct {
	// tried is true when a call was made to at least one replica: it used
	// up an attempt of a create.
	tried bool
}

// callUnit calls a unit through its logic-service replicas, starting at a
// random one. Every unit call is idempotent (see tradeunit.OrderService), so
// when a replica cannot be reached or does not answer, the call moves on to
// the next replica of the same unit. It returns the unit's answer, or a
// transport error once every replica has failed. The outcome feeds the
// proxy's own view of the unit (selection.Passive) and its metrics, under
// the operation name op.
func callUnit[T any](ctx context.Context, p *Proxy, u *routing.Unit, op string, call unitCall[T]) (T, callResult, error) {
	start := time.Now()
	v, res, err := callReplicas(ctx, p, u, call)
	d := time.Since(start)
	outcome := "ok"
	switch code := tradeunit.ErrorCode(err); {
	case code == tradeunit.CodeUnitUnavailable || code == tradeunit.CodeInternal:
		outcome = "failed"
	case err != nil:
		outcome = "answered"
	}
	p.metrics.unitCall(u.ID, op, outcome, d)
	// A unit masked in the routing table or a caller that gave up says
	// nothing about the unit's health.
	if res.tried && (ctx.Err() == nil || outcome != "failed") {
		if p.passive.Record(u.ID, outcome != "failed", d) {
			p.askReplan()
		}
	}
	return v, res, err
}

// callReplicas makes the call on the unit's replicas; see callUnit.
func callReplicas[T any](ctx context.Context, p *Proxy, u *routing.Unit, call unitCall[T]) (T, callResult, error) {
	if !u.Available {
		var zero T
		return zero, callResult{}, tradeunit.Errorf(tradeunit.CodeUnitUnavailable, "unit %d is unavailable", u.ID)
	}
	// The replicas in the proxy's own zone first: a call that stays in the
	// room is faster and survives the loss of the link between rooms; the
	// others are the fallback, and those in an evacuated zone the last.
	near, far := u.LogicByZone(p.cfg.Zone, p.routes.Current().EvacuatedZones)
	return callAny(ctx, p, "unit "+u.ID.String(), near, far, p.cfg.UnitTimeout, p.dialer.Conn,
		func(ctx context.Context, c tradeunit.LogicConn) (T, error) { return call(ctx, c) })
}

// callAny calls the replicas of what (a unit, a directory shard), those at
// near before those at far, with timeout per call, logging when none
// answers (see replicas.CallNearFirst).
func callAny[C replicas.Conn, T any](ctx context.Context, p *Proxy, what string, near, far []string, timeout time.Duration,
	dial func(addr string) (C, error), call func(ctx context.Context, c C) (T, error)) (T, callResult, error) {
	v, sent, err := replicas.CallNearFirst(ctx, what, near, far, timeout, dial, call)
	if errors.Is(err, replicas.ErrNoReplica) {
		p.log.Warn("unreachable", "what", what, "err", err)
	}
	return v, callResult{tried: sent}, err
}

// unitOf routes an order number to its unit. A malformed number is a
// PARAM_ERROR; a number of a unit the table does not know is not found.
func (p *Proxy) unitOf(orderNo string) (*routing.Unit, error) {
	id, err := orderno.UnitOf(orderNo)
	if err != nil {
		return nil, orderno.AsParamError(err)
	}
	u, ok := p.routes.Current().Unit(id)
	if !ok {
		return nil, tradeunit.Errorf(tradeunit.CodeNotFound, "order %s does not exist", orderNo)
	}
	return u, nil
}

// callOrder routes a call by order number.
func callOrder[T any](ctx context.Context, p *Proxy, orderNo, op string, call unitCall[T]) (T, error) {
	u, err := p.unitOf(orderNo)
	if err != nil {
		var zero T
		return zero, err
	}
	p.balancer.Record(u.ID)
	v, _, err := callUnit(ctx, p, u, op, call)
	return v, err
}
