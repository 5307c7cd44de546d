package proxy

import (
	"context"
	"math/rand/v2"
	"time"

	"tradeunit"
	"tradeunit/orderno"
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
	return callAny(ctx, p, "unit "+u.ID.String(), u.LogicAddrs, p.dialer.Conn,
		func(ctx context.Context, c tradeunit.LogicConn) (T, error) { return call(ctx, c) })
}

// replicaConn is a connection to one replica of a unit or a directory
// shard.
type replicaConn interface {
	Down() bool
	Reconnect()
}

// callAny calls the replicas at addrs of what (a unit, a directory shard),
// starting at a random one, until one answers: every call is idempotent.
// It returns that answer, or an UNIT_UNAVAILABLE error wrapping the last
// failure once every replica has failed.
func callAny[C replicaConn, T any](ctx context.Context, p *Proxy, what string, addrs []string,
	dial func(addr string) (C, error), call func(ctx context.Context, c C) (T, error)) (T, callResult, error) {
	var (
		zero T
		res  callResult
	)
	n := len(addrs)
	if n == 0 {
		return zero, res, tradeunit.Errorf(tradeunit.CodeUnitUnavailable, "%s has no service address", what)
	}
	start := rand.IntN(n)
	var lastErr error
	// The first pass skips replicas whose connection is in failure; if none
	// was live, the second pass asks them to reconnect now and tries them,
	// so that a replica that has come back is used at once.
	for pass := 0; pass < 2 && !res.tried; pass++ {
		for i := 0; i < n; i++ {
			addr := addrs[(start+i)%n]
			c, err := dial(addr)
			if err != nil {
				lastErr = err
				continue
			}
			if pass == 0 && c.Down() {
				// gRPC fails calls on a connection in failure at once, without
				// sending them: skip the replica without calling it.
				lastErr = tradeunit.Errorf(tradeunit.CodeUnitUnavailable, "%s: replica %s is down", what, addr)
				continue
			}
			if pass == 1 {
				c.Reconnect()
			}
			res.tried = true
			actx, cancel := context.WithTimeout(ctx, p.cfg.UnitTimeout)
			v, err := call(actx, c)
			cancel()
			if tradeunit.Answered(err) {
				return v, res, err
			}
			lastErr = err
			if ctx.Err() != nil {
				break
			}
		}
	}
	p.log.Warn("unreachable", "what", what, "err", lastErr)
	return zero, res, &tradeunit.Error{
		Code:    tradeunit.CodeUnitUnavailable,
		Message: what + " is unavailable; retry later",
		Op:      "proxy.call",
		Err:     lastErr,
	}
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
