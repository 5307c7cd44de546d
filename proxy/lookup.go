package proxy

import (
	"context"
	"errors"

	"tradeunit"
)

// Lookups by a merchant's own number ask the key's directory shard where
// its record is, then that record's unit: two calls, whatever the number
// of units, and a unit that is down makes only its own records unavailable.

// orderByOutTradeNo returns the order of (mchid, outTradeNo).
func (p *Proxy) orderByOutTradeNo(ctx context.Context, mchid, outTradeNo string) (*tradeunit.Order, error) {
	key := tradeunit.MerchantKey{Mchid: mchid, Kind: tradeunit.KeyOrder, Value: outTradeNo}
	e, err := p.entry(ctx, key)
	if err != nil {
		return nil, err
	}
	if e != nil && p.stale(e) {
		// A create gave up or died between its unit and the commit: its
		// order, if it made one, is the key's.
		if e, err = p.settleOrder(ctx, e); err != nil {
			return nil, err
		}
	}
	if e == nil || e.State != tradeunit.EntryCommitted {
		// Pending: no client has been told of an order yet.
		return nil, tradeunit.Errorf(tradeunit.CodeNotFound, "order with out_trade_no %s does not exist", outTradeNo)
	}
	return callOrder(ctx, p, e.RecordNo, "get_by_out_trade_no", func(ctx context.Context, svc tradeunit.OrderService) (*tradeunit.Order, error) {
		return svc.Order(ctx, mchid, e.RecordNo)
	})
}

// settleOrder commits a stale pending entry to the order its attempt made,
// if it made one, and returns the entry then.
func (p *Proxy) settleOrder(ctx context.Context, e *tradeunit.DirectoryEntry) (*tradeunit.DirectoryEntry, error) {
	u, ok := p.routes.Current().Unit(e.Attempt.Unit)
	if !ok {
		return e, nil
	}
	o, _, err := callUnit(ctx, p, u, "supersede", func(ctx context.Context, svc tradeunit.OrderService) (*tradeunit.Order, error) {
		return svc.SupersedeAttempt(ctx, e.Key.Mchid, e.Key.Value, e.Attempt.ID)
	})
	if tradeunit.IsCode(err, tradeunit.CodeNotFound) {
		return e, nil
	}
	if err != nil {
		return nil, err
	}
	got, err := p.put(ctx, e.CommittedTo(o))
	if errors.Is(err, tradeunit.ErrVersionConflict) {
		return got, nil
	}
	return got, err
}

// refundByOutRefundNo returns the refund of (mchid, outRefundNo).
func (p *Proxy) refundByOutRefundNo(ctx context.Context, mchid, outRefundNo string) (*tradeunit.Refund, error) {
	key := tradeunit.MerchantKey{Mchid: mchid, Kind: tradeunit.KeyRefund, Value: outRefundNo}
	e, err := p.entry(ctx, key)
	if err != nil {
		return nil, err
	}
	switch {
	case e == nil, e.State == tradeunit.EntryPending && !p.stale(e):
		return nil, tradeunit.Errorf(tradeunit.CodeNotFound, "refund %s does not exist", outRefundNo)
	case e.State == tradeunit.EntryPending:
		// A refund that gave up between its unit and the commit: its unit
		// says whether it was made.
		u, ok := p.routes.Current().Unit(e.Attempt.Unit)
		if !ok {
			return nil, tradeunit.Errorf(tradeunit.CodeNotFound, "refund %s does not exist", outRefundNo)
		}
		f, _, err := callUnit(ctx, p, u, "get_refund", func(ctx context.Context, svc tradeunit.OrderService) (*tradeunit.Refund, error) {
			return svc.Refund(ctx, mchid, outRefundNo)
		})
		return f, err
	}
	return callOrder(ctx, p, e.RecordNo, "get_refund", func(ctx context.Context, svc tradeunit.OrderService) (*tradeunit.Refund, error) {
		return svc.Refund(ctx, mchid, outRefundNo)
	})
}

// createRefund refunds an order once per (mchid, out_refund_no), across
// units: the key is reserved in the directory for the order's unit (a put
// without a read first, as for creates), the
// unit makes the refund (idempotent per out_refund_no), and the entry is
// committed to it. The same out_refund_no with another body (another
// order, amount or reason) is OUT_REFUND_NO_USED.
func (p *Proxy) createRefund(ctx context.Context, req tradeunit.CreateRefundRequest) (*tradeunit.Refund, error) {
	u, err := p.unitOf(req.OrderNo)
	if err != nil {
		return nil, err
	}
	key := tradeunit.MerchantKey{Mchid: req.Mchid, Kind: tradeunit.KeyRefund, Value: req.OutRefundNo}
	fp := req.Fingerprint()
	e, err := p.reserve(ctx, &tradeunit.DirectoryEntry{Key: key, State: tradeunit.EntryPending,
		Attempt: newAttempt(u.ID), Fingerprint: fp, Version: 1})
	if err != nil {
		return nil, err
	}
	for step := 0; step < maxSteps && ctx.Err() == nil; step++ {
		switch {
		case e == nil:
			e, err = p.putFollow(ctx, &tradeunit.DirectoryEntry{Key: key, State: tradeunit.EntryPending,
				Attempt: newAttempt(u.ID), Fingerprint: fp, Version: 1})
		case e.Fingerprint != fp && (e.State == tradeunit.EntryCommitted || !p.stale(e)):
			return nil, tradeunit.Errorf(tradeunit.CodeOutRefundNoUsed, "out_refund_no %s was already used for a different refund", req.OutRefundNo)
		case e.State == tradeunit.EntryCommitted:
			return p.refundByOutRefundNo(ctx, req.Mchid, req.OutRefundNo)
		case e.Fingerprint != fp: // stale: take it over unless its refund was made
			switch _, lerr := p.refundByOutRefundNo(ctx, req.Mchid, req.OutRefundNo); {
			case lerr == nil:
				return nil, tradeunit.Errorf(tradeunit.CodeOutRefundNoUsed, "out_refund_no %s was already used for a different refund", req.OutRefundNo)
			case !tradeunit.IsCode(lerr, tradeunit.CodeNotFound):
				return nil, lerr
			}
			e, err = p.putFollow(ctx, e.Next(func(n *tradeunit.DirectoryEntry) {
				n.Attempt, n.Fingerprint = newAttempt(u.ID), fp
			}))
		default:
			f, cerr := callOrder(ctx, p, req.OrderNo, "refund", func(ctx context.Context, svc tradeunit.OrderService) (*tradeunit.Refund, error) {
				return svc.CreateRefund(ctx, req)
			})
			if cerr != nil {
				return nil, cerr
			}
			got, perr := p.put(ctx, e.Next(func(n *tradeunit.DirectoryEntry) {
				n.State, n.RecordNo = tradeunit.EntryCommitted, f.OrderNo
			}))
			switch {
			case perr == nil:
				return f, nil
			case errors.Is(perr, tradeunit.ErrVersionConflict):
				e = got // follow the entry
			default:
				return nil, perr
			}
		}
		if err != nil {
			return nil, err
		}
	}
	return nil, tradeunit.Unavailable("proxy.createRefund", "the refund's directory entry kept changing; retry with the same out_refund_no", ctx.Err())
}

// putFollow puts e and returns the entry to go on from: e, or the winner
// of a conflict.
func (p *Proxy) putFollow(ctx context.Context, e *tradeunit.DirectoryEntry) (*tradeunit.DirectoryEntry, error) {
	got, err := p.put(ctx, e)
	if errors.Is(err, tradeunit.ErrVersionConflict) {
		return got, nil
	}
	return got, err
}
