package query

import (
	"context"
	"fmt"
	"slices"
	"time"

	"tradeunit"
)

// RebuildProgress is how far a Rebuild has come.
type RebuildProgress struct {
	Unit    tradeunit.UnitID // the unit being read
	Orders  int64            // orders applied so far, over all units
	Refunds int64            // refunds applied so far
	// Total is the number of orders the units held when the rebuild began
	// (the bar's end; orders created since come on top).
	Total int64
}

// Rebuild fills s from the units' own rows, batch by batch: every order as
// it stands, every refund. It does not empty s first (Reset does): applied
// like events, by version, a rebuilt row never takes back a newer change a
// consumer applied meanwhile, so the consumer may keep running. progress,
// if not nil, is called after each batch.
func Rebuild(ctx context.Context, s *Store, units map[tradeunit.UnitID]tradeunit.Store, batch int, progress func(RebuildProgress)) error {
	if batch < 1 {
		return tradeunit.Errorf(tradeunit.CodeParamError, "rebuild: batch must be positive, got %d", batch)
	}
	ids := make([]tradeunit.UnitID, 0, len(units))
	for id := range units {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var p RebuildProgress
	for _, id := range ids {
		if tr, ok := units[id].(tradeunit.TotalsReader); ok {
			totals, err := tr.Totals(ctx, time.Unix(0, 0), time.Now().Add(24*time.Hour))
			if err != nil {
				return fmt.Errorf("rebuild: unit %d: %w", id, err)
			}
			for _, t := range totals {
				p.Total += t.Created
			}
		}
	}
	report := func() {
		if progress != nil {
			progress(p)
		}
	}
	for _, id := range ids {
		p.Unit = id
		if err := rebuildOrders(ctx, s, id, units[id], batch, &p, report); err != nil {
			return fmt.Errorf("rebuild: unit %d: %w", id, err)
		}
		if err := rebuildRefunds(ctx, s, id, units[id], batch, &p, report); err != nil {
			return fmt.Errorf("rebuild: unit %d: %w", id, err)
		}
	}
	report()
	return nil
}

// snapshotEvent is the event that carries o as it stands; its sequence
// number is 1, below any real event's watermark.
func snapshotEvent(id tradeunit.UnitID, typ tradeunit.EventType, o *tradeunit.Order) tradeunit.OrderEvent {
	return tradeunit.OrderEvent{Schema: tradeunit.EventSchema, ID: "rebuild", Unit: id, Seq: 1, Type: typ,
		Time: o.UpdateTime, Order: tradeunit.NewEventOrder(o, o.Version)}
}

func rebuildOrders(ctx context.Context, s *Store, id tradeunit.UnitID, u tradeunit.Store, batch int, p *RebuildProgress, report func()) error {
	after := ""
	for {
		orders, err := u.OrdersAfter(ctx, after, batch)
		if err != nil {
			return err
		}
		if len(orders) == 0 {
			return nil
		}
		events := make([]tradeunit.OrderEvent, len(orders))
		for i, o := range orders {
			events[i] = snapshotEvent(id, tradeunit.EventOrderCreated, o)
		}
		if err := s.Apply(ctx, events); err != nil {
			return err
		}
		after = orders[len(orders)-1].OrderNo
		p.Orders += int64(len(orders))
		report()
	}
}

func rebuildRefunds(ctx context.Context, s *Store, id tradeunit.UnitID, u tradeunit.Store, batch int, p *RebuildProgress, report func()) error {
	var after int64
	for {
		refunds, next, err := u.RefundsAfter(ctx, after, batch)
		if err != nil {
			return err
		}
		if len(refunds) == 0 {
			return nil
		}
		events := make([]tradeunit.OrderEvent, 0, len(refunds))
		orders := map[string]*tradeunit.Order{}
		for _, r := range refunds {
			o := orders[r.OrderNo]
			if o == nil {
				if o, err = u.Order(ctx, r.OrderNo); err != nil {
					return err
				}
				orders[r.OrderNo] = o
			}
			e := snapshotEvent(id, tradeunit.EventRefundCreated, o)
			e.Refund = tradeunit.NewEventRefund(r)
			events = append(events, e)
		}
		if err := s.Apply(ctx, events); err != nil {
			return err
		}
		after = next
		p.Refunds += int64(len(refunds))
		report()
	}
}
