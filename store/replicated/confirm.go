package replicated

import (
	"context"

	"tradeunit"
	"tradeunit/store/sqlstore"
)

// confirmed is the primary's store as the reads that trust it see it: a
// result counts only if the server was still writable once it had been
// read. A failover fences the old primary (read_only) before it promotes
// another, so a server found writable after a read was still the only
// primary when the read ran, and the result is current. A server found
// read-only may have been replaced already, and the new primary written
// to, by logic services that followed the routing table sooner than this
// one: its result is not trusted, and the read goes on to a replica,
// marked degraded. The check costs one round trip per read.
type confirmed struct {
	tradeunit.Store
	s *sqlstore.Store
}

func (c confirmed) Order(ctx context.Context, orderNo string) (*tradeunit.Order, error) {
	o, err := c.Store.Order(ctx, orderNo)
	return o, c.confirm(ctx, err)
}

func (c confirmed) OrderByOutTradeNo(ctx context.Context, mchid, outTradeNo string) (*tradeunit.Order, error) {
	o, err := c.Store.OrderByOutTradeNo(ctx, mchid, outTradeNo)
	return o, c.confirm(ctx, err)
}

func (c confirmed) Refund(ctx context.Context, mchid, outRefundNo string) (*tradeunit.Refund, error) {
	f, err := c.Store.Refund(ctx, mchid, outRefundNo)
	return f, c.confirm(ctx, err)
}

// confirm returns err, the read's outcome, if the server is still
// writable; a store fault is returned as it is.
func (c confirmed) confirm(ctx context.Context, err error) error {
	if code := tradeunit.ErrorCode(err); code == tradeunit.CodeInternal || code == tradeunit.CodeUnitUnavailable {
		return err
	}
	ro, cerr := c.s.ReadOnly(ctx)
	switch {
	case cerr != nil:
		return cerr
	case ro:
		return &tradeunit.Error{Code: tradeunit.CodeUnitUnavailable, Op: "replicated.confirm",
			Message: "the unit's primary is read-only (fenced, failing over); retry later"}
	}
	return err
}
