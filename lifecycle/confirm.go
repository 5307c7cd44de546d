package lifecycle

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"tradeunit"
	"tradeunit/orderno"
	"tradeunit/store/sqlstore"
)

// The switch's confirmation. Each logic service switches to the cold copy
// when it sees the new topology, not all at the same instant: until every
// one has, a change taken by one that has switched could be missed by a
// read served by one that has not, and deleting the old data would make
// the latter answer "no such order". So the copy is frozen too before the
// mapping moves, a marker order (of the probe merchant) is written on it,
// and the copy thaws only once every logic service of the unit finds the
// marker, reading through the same path as a merchant's read: then all of
// them serve from the copy. Updates wait through it like through the
// freeze.

// markerOf is the marker's out_trade_no of the move whose freeze began at
// frozenAt: one of its own, so that a marker an earlier move left (copied
// back by an undo) never confirms this one.
func markerOf(frozenAt time.Time) string {
	return "moved-" + strconv.FormatInt(frozenAt.UnixMicro(), 36)
}

// markMoved writes the marker order on the copy (again, after a crash, is
// harmless: the merchant key makes it one order).
func markMoved(ctx context.Context, id tradeunit.UnitID, dst *sqlstore.Store, marker string) error {
	seq, err := dst.AllocateSequence(ctx, 1)
	if err != nil {
		return err
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	no, err := orderno.New(id, now, uint64(seq))
	if err != nil {
		return err
	}
	res := dst.CreateOrders(ctx, []*tradeunit.Order{{OrderNo: no.String(), Mchid: tradeunit.ProbeMchid, OutTradeNo: marker,
		Description: "moved to cold storage", Amount: tradeunit.Amount{Total: 1, Currency: tradeunit.DefaultCurrency}, CreateTime: now}})
	return res[0].Err
}

// confirmSwitch waits until every logic service of unit id (its addresses
// in the routing table) reads the marker, or until ctx ends. A replica that
// cannot be reached does not hold it up: it serves nothing, and it reads
// the topology before it serves again.
func (m *Mover) confirmSwitch(ctx context.Context, id tradeunit.UnitID, marker string) (string, error) {
	u, ok := m.deps.Routes.Current().Unit(id)
	if !ok {
		return "", tradeunit.Errorf(tradeunit.CodeParamError, "unit %d is not in the routing table", id)
	}
	pending := map[string]bool{}
	for _, a := range u.LogicAddrs {
		pending[a] = true
	}
	unreachable := 0
	last := map[string]error{}
	for backoff := 5 * time.Millisecond; ; backoff = min(2*backoff, 100*time.Millisecond) {
		for addr := range pending {
			c, err := m.deps.Dialer.Conn(addr)
			if err != nil {
				return "", err
			}
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			_, err = c.OrderByOutTradeNo(cctx, tradeunit.ProbeMchid, marker)
			cancel()
			last[addr] = err
			switch {
			case err == nil:
				delete(pending, addr)
			case tradeunit.IsCode(err, tradeunit.CodeNotFound):
				// still reading the old storage
			case c.Down() || tradeunit.IsCode(err, tradeunit.CodeUnitUnavailable) && ctx.Err() == nil && backoff >= 100*time.Millisecond:
				delete(pending, addr)
				unreachable++
			}
		}
		if len(pending) == 0 {
			return fmt.Sprintf("%d logic services read the copy (%d unreachable)", len(u.LogicAddrs)-unreachable, unreachable), nil
		}
		select {
		case <-ctx.Done():
			addrs := slices.Sorted(maps.Keys(pending))
			return "", fmt.Errorf("logic services %v still read the old storage (%v: %v): %w", addrs, addrs[0], last[addrs[0]], ctx.Err())
		case <-time.After(backoff):
		}
	}
}
