package proxy

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"tradeunit"
	"tradeunit/selection"
)

// createOrder places a new order, exactly once per (mchid, out_trade_no),
// through the key's directory entry:
//
//  1. Reserve: a key with no entry gets pending(unit, attempt), the unit
//     the first that selection ranks (its partition, health, canary, load
//     and latency; see package selection). A key already reserved by a
//     create of the same body is joined: the same attempt on the same unit,
//     which the unit's unique key makes one order.
//  2. Call the unit with the attempt. On its order, commit the entry to it;
//     the order is returned only if the entry is committed to that order:
//     an entry that moved on meanwhile wins, and the order it names is
//     returned instead (the one this call made is an orphan, which the
//     directory's reconciler closes).
//  3. Order retry: a unit that answers "unavailable, nothing written" is
//     left for the next ranked unit; one that gives no answer, or an
//     unknown outcome, too, but its attempt is recorded in the entry's
//     abandoned attempts (it may have made an order). A definite answer
//     (a caller's mistake) ends the create. At most MaxCreateAttempts units
//     are called; one that could not be dialed uses no attempt.
//  4. A pending entry older than any create could take belongs to a create
//     that gave up or died: its attempt is settled on its unit
//     (SupersedeAttempt): the order it made is committed, or the attempt is
//     refused for good and the entry moves on.
//
// A committed entry of another body is OUT_TRADE_NO_USED. A pending one of
// another body that is not stale is UNIT_UNAVAILABLE (retry): until its
// create commits, the key has no order (a lookup says 404) and may never
// get that one, so a refusal could be contradicted. A shard that cannot be
// reached is UNIT_UNAVAILABLE: nothing is created without a reservation. It
// returns how many units it called.
func (p *Proxy) createOrder(ctx context.Context, r tradeunit.CreateOrderRequest) (_ *tradeunit.Order, attempts int, _ error) {
	r.Normalize()
	if err := r.Validate(); err != nil {
		return nil, 0, err
	}
	c := &creation{p: p, r: r, key: tradeunit.MerchantKey{Mchid: r.Mchid, Kind: tradeunit.KeyOrder, Value: r.OutTradeNo},
		fp: r.Fingerprint(), plan: p.plan.Load()}
	run := c.run
	if p.cfg.UnsafeWithoutDirectory {
		run = c.runWithoutDirectory
	}
	o, err := run(ctx)
	return o, c.attempts, err
}

// creation is one create's walk through its key's entry.
type creation struct {
	p        *Proxy
	r        tradeunit.CreateOrderRequest
	key      tradeunit.MerchantKey
	fp       string
	plan     *selection.Plan
	ranked   []tradeunit.UnitID
	rankBuf  [selection.MaxPick]tradeunit.UnitID // ranked's storage: one allocation per create, the creation's
	picked   bool
	passed   []tradeunit.UnitID // units this create moved away from
	attempts int
	lastErr  error
}

// maxSteps bounds the entry's moves one create makes or follows.
const maxSteps = 4 * selection.MaxPick

func (c *creation) run(ctx context.Context) (*tradeunit.Order, error) {
	e, err := c.reserve(ctx)
	if err != nil {
		return nil, err
	}
	for step := 0; step < maxSteps && ctx.Err() == nil; step++ {
		switch {
		case e == nil:
			var u tradeunit.UnitID
			if u, err = c.nextUnit(0); err != nil {
				return nil, err
			}
			e, err = c.p.putFollow(ctx, &tradeunit.DirectoryEntry{Key: c.key, State: tradeunit.EntryPending,
				Attempt: newAttempt(u), Fingerprint: c.fp, Version: 1})
		case e.State == tradeunit.EntryCommitted:
			if e.Fingerprint != c.fp {
				return nil, usedErr(c.r.OutTradeNo)
			}
			return c.fetch(ctx, e)
		case e.Fingerprint != c.fp && !c.p.stale(e):
			return nil, inProgressErr(c.r.OutTradeNo)
		case c.p.stale(e):
			e, err = c.settle(ctx, e)
		default:
			e, err = c.create(ctx, e)
		}
		if o, done := err.(orderFound); done {
			return o.order, nil
		}
		if err != nil {
			return nil, err
		}
	}
	if c.lastErr != nil {
		return nil, c.noUnit()
	}
	return nil, tradeunit.Unavailable("proxy.createOrder", "the order's directory entry kept changing; retry with the same out_trade_no", ctx.Err())
}

// runWithoutDirectory is the create of the directory's benchmark baseline
// (Config.UnsafeWithoutDirectory): order retry over the ranked units with
// no reservation, so nothing stops a second order of the key elsewhere.
func (c *creation) runWithoutDirectory(ctx context.Context) (*tradeunit.Order, error) {
	var current tradeunit.UnitID
	for {
		u, err := c.nextUnit(current)
		if err != nil {
			return nil, err
		}
		c.passed, current = append(c.passed, u), u
		unit, ok := c.p.routes.Current().Unit(u)
		if !ok {
			continue
		}
		req := c.r
		req.Attempt = newAttempt(u).ID
		c.p.balancer.Record(u)
		o, res, err := callUnit(ctx, c.p, unit, "create", func(ctx context.Context, svc tradeunit.OrderService) (*tradeunit.Order, error) {
			return svc.CreateOrder(ctx, req)
		})
		if res.tried {
			c.attempts++
		}
		if code := tradeunit.ErrorCode(err); code != tradeunit.CodeUnitUnavailable && code != tradeunit.CodeInternal {
			return o, err
		}
		c.lastErr = err
	}
}

// reserve starts the walk with the key's entry (Proxy.reserve); when no
// unit can be picked, the entry is read instead: a repeat of a create that
// committed is still answered.
func (c *creation) reserve(ctx context.Context) (*tradeunit.DirectoryEntry, error) {
	u, err := c.nextUnit(0)
	if err != nil {
		return c.p.entry(ctx, c.key)
	}
	return c.p.reserve(ctx, &tradeunit.DirectoryEntry{Key: c.key, State: tradeunit.EntryPending,
		Attempt: newAttempt(u), Fingerprint: c.fp, Version: 1})
}

// orderFound ends a walk with its order.
type orderFound struct{ order *tradeunit.Order }

func (orderFound) Error() string { return "order found" }

// create calls the entry's unit with its attempt, and commits what it made.
func (c *creation) create(ctx context.Context, e *tradeunit.DirectoryEntry) (*tradeunit.DirectoryEntry, error) {
	if c.attempts >= c.p.cfg.MaxCreateAttempts {
		return nil, c.noUnit()
	}
	u, ok := c.p.routes.Current().Unit(e.Attempt.Unit)
	if !ok {
		return c.moveOn(ctx, e, false) // removed from the table since
	}
	if c.attempts > 0 {
		c.p.metrics.createRetries.Inc()
		c.p.log.Info("create retried on another unit", "attempt", c.attempts+1, "unit", u.ID, "previous_error", c.lastErr)
	} else {
		c.p.metrics.selected.WithLabelValues(u.ID.String()).Inc()
	}
	req := c.r
	req.Attempt = e.Attempt.ID
	req.AbandonedUnits = nil
	for _, a := range e.Abandoned {
		if !slices.Contains(req.AbandonedUnits, a.Unit) {
			req.AbandonedUnits = append(req.AbandonedUnits, a.Unit)
		}
	}
	c.p.balancer.Record(u.ID)
	o, res, err := callUnit(ctx, c.p, u, "create", func(ctx context.Context, svc tradeunit.OrderService) (*tradeunit.Order, error) {
		return svc.CreateOrder(ctx, req)
	})
	if res.tried {
		c.attempts++
	}
	code := tradeunit.ErrorCode(err)
	switch {
	case err == nil:
		return c.commit(ctx, e, o)
	case code == tradeunit.CodeAttemptSuperseded:
		return c.p.entry(ctx, c.key) // another create settled it: follow the entry
	case code == tradeunit.CodeOutTradeNoUsed:
		return c.used(ctx, e, err)
	case code != tradeunit.CodeUnitUnavailable && code != tradeunit.CodeInternal:
		return nil, err // the unit's definite answer: a caller's mistake or a conflict
	}
	c.lastErr = err
	return c.moveOn(ctx, e, res.tried && tradeunit.OutcomeUnknown(err))
}

// settle finishes a stale pending entry: the order its attempt made, if
// any, is committed; otherwise the attempt is refused for good and the
// entry moves on.
func (c *creation) settle(ctx context.Context, e *tradeunit.DirectoryEntry) (*tradeunit.DirectoryEntry, error) {
	u, ok := c.p.routes.Current().Unit(e.Attempt.Unit)
	if !ok {
		return c.moveOn(ctx, e, true)
	}
	o, _, err := callUnit(ctx, c.p, u, "supersede", func(ctx context.Context, svc tradeunit.OrderService) (*tradeunit.Order, error) {
		return svc.SupersedeAttempt(ctx, c.key.Mchid, c.key.Value, e.Attempt.ID)
	})
	switch code := tradeunit.ErrorCode(err); {
	case err == nil:
		return c.commit(ctx, e, o)
	case code == tradeunit.CodeNotFound:
		return c.moveOn(ctx, e, false) // settled: that attempt makes nothing, ever
	case code == tradeunit.CodeUnitUnavailable || code == tradeunit.CodeInternal:
		c.lastErr = err
		return c.moveOn(ctx, e, true) // cannot tell: leave it to the reconciler
	default:
		return nil, err
	}
}

// used handles a unit's OUT_TRADE_NO_USED for the pending entry e: the
// unit holds an order of the key with another body (an abandoned
// attempt's), which is the key's one order. The entry is committed to it
// before the create is told so, or a later create could still make an order
// of this body elsewhere; while the unit cannot say which order it holds,
// the create is told to retry.
func (c *creation) used(ctx context.Context, e *tradeunit.DirectoryEntry, used error) (*tradeunit.DirectoryEntry, error) {
	u, ok := c.p.routes.Current().Unit(e.Attempt.Unit)
	if !ok {
		return nil, tradeunit.Unavailable("proxy.createOrder", "the unit holding this out_trade_no left the routing table; retry later", used)
	}
	o, _, err := callUnit(ctx, c.p, u, "supersede", func(ctx context.Context, svc tradeunit.OrderService) (*tradeunit.Order, error) {
		return svc.SupersedeAttempt(ctx, c.key.Mchid, c.key.Value, e.Attempt.ID)
	})
	switch {
	case err == nil:
		return c.commit(ctx, e, o)
	case tradeunit.IsCode(err, tradeunit.CodeNotFound):
		return nil, used // no order after all, and this attempt can make none
	}
	return nil, err
}

// commit commits the entry to o, an order of the entry's unit for its key,
// and ends the walk with o if the entry is then committed to it.
func (c *creation) commit(ctx context.Context, e *tradeunit.DirectoryEntry, o *tradeunit.Order) (*tradeunit.DirectoryEntry, error) {
	got, err := c.p.put(ctx, e.CommittedTo(o))
	switch {
	case errors.Is(err, tradeunit.ErrVersionConflict):
		return got, nil // the entry moved on: follow it
	case err != nil:
		return nil, err
	case got.Fingerprint != c.fp:
		return nil, usedErr(c.r.OutTradeNo)
	}
	return nil, orderFound{o}
}

// moveOn moves a pending entry to the next unit, recording its attempt as
// abandoned when it may have made an order.
func (c *creation) moveOn(ctx context.Context, e *tradeunit.DirectoryEntry, abandon bool) (*tradeunit.DirectoryEntry, error) {
	c.passed = append(c.passed, e.Attempt.Unit)
	u, err := c.nextUnit(e.Attempt.Unit)
	if err != nil {
		return nil, err
	}
	return c.p.putFollow(ctx, e.Next(func(n *tradeunit.DirectoryEntry) {
		if abandon {
			n.Abandoned = append(n.Abandoned, e.Attempt)
		}
		n.Attempt, n.Fingerprint = newAttempt(u), c.fp
	}))
}

// nextUnit returns the best ranked unit this create has not passed over,
// other than current.
func (c *creation) nextUnit(current tradeunit.UnitID) (tradeunit.UnitID, error) {
	if !c.picked {
		ranked, err := c.plan.Pick(c.rankBuf[:0], c.r.Mchid, c.r.OutTradeNo, selection.MaxPick)
		if err != nil {
			return 0, err
		}
		c.ranked, c.picked = ranked, true
	}
	if c.attempts < c.p.cfg.MaxCreateAttempts {
		for _, u := range c.ranked {
			if u != current && !slices.Contains(c.passed, u) {
				return u, nil
			}
		}
	}
	return 0, c.noUnit()
}

func (c *creation) noUnit() error {
	return &tradeunit.Error{
		Code:    tradeunit.CodeNoUnitAvailable,
		Message: "no unit could take the order; retry later with the same out_trade_no",
		Op:      "proxy.createOrder",
		Err:     c.lastErr,
	}
}

// fetch returns the order a committed entry names, from its unit.
func (c *creation) fetch(ctx context.Context, e *tradeunit.DirectoryEntry) (*tradeunit.Order, error) {
	return callOrder(ctx, c.p, e.RecordNo, "get", func(ctx context.Context, svc tradeunit.OrderService) (*tradeunit.Order, error) {
		return svc.Order(ctx, c.key.Mchid, e.RecordNo)
	})
}

func inProgressErr(outTradeNo string) error {
	return tradeunit.Unavailable("proxy.createOrder", fmt.Sprintf(
		"another create of out_trade_no %s, with a different description or amount, is in progress; retry later", outTradeNo), nil)
}

func usedErr(outTradeNo string) error {
	return tradeunit.Errorf(tradeunit.CodeOutTradeNoUsed,
		"out_trade_no %s was already used for an order with a different description or amount", outTradeNo)
}
