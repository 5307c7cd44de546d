package replicated

import (
	"context"
	"time"

	"tradeunit"
	"tradeunit/dsn"
	"tradeunit/store/sqlstore"
)

// Unit is a unit's replicated storage: tradeunit.Storage over sqlstore.
type Unit struct {
	*Storage[*sqlstore.Store]
}

var _ tradeunit.Storage = (*Unit)(nil)

// OpenUnit opens unit id's storage (see Open): a primary must hold unit
// id's database or an empty one, which it binds to id; replicas serve
// eventual reads.
func OpenUnit(cfg Config, id tradeunit.UnitID, deps Deps) (*Unit, error) {
	if err := id.Validate(); err != nil {
		return nil, err
	}
	deps.Name = "unit " + id.String()
	s, err := Open(cfg, deps, Opener[*sqlstore.Store]{
		Primary: func(ctx context.Context, d dsn.DSN, passwords dsn.Passwords) (*sqlstore.Store, error) {
			store, err := sqlstore.Open(ctx, d, passwords)
			if err != nil {
				return nil, err
			}
			if err := store.BindUnit(ctx, id); err != nil {
				store.Close()
				return nil, err
			}
			return store, nil
		},
		Replica: sqlstore.OpenReadOnly,
	})
	if err != nil {
		return nil, err
	}
	return &Unit{s}, nil
}

// Primary implements tradeunit.Storage.
func (u *Unit) Primary() (tradeunit.Store, error) {
	store, err := u.Writer()
	if err != nil {
		return nil, err
	}
	return store, nil
}

// Readers implements tradeunit.Storage.
func (u *Unit) Readers(c tradeunit.Consistency) ([]tradeunit.Reader, error) {
	reads, err := u.Storage.Readers(c)
	if err != nil {
		return nil, err
	}
	out := make([]tradeunit.Reader, len(reads))
	for i, r := range reads {
		out[i] = tradeunit.Reader{Store: r.Store, Info: r.Info}
		if r.Confirm {
			out[i].Store = confirmed{r.Store}
		}
	}
	return out, nil
}

// DeleteProbeOrders deletes the health checker's old probe orders on the
// unit's primary of the moment (see tradeunit.Store).
func (u *Unit) DeleteProbeOrders(ctx context.Context, createdBefore time.Time, limit int) (int, error) {
	store, err := u.Writer()
	if err != nil {
		return 0, err
	}
	return store.DeleteProbeOrders(ctx, createdBefore, limit)
}

// confirmed is a MariaDB primary's store as the reads that trust it see
// it: each result is confirmed (see confirm).
type confirmed struct{ *sqlstore.Store }

func (c confirmed) Order(ctx context.Context, orderNo string) (*tradeunit.Order, error) {
	o, err := c.Store.Order(ctx, orderNo)
	return o, confirm(ctx, c.Store, err)
}

func (c confirmed) OrderByOutTradeNo(ctx context.Context, mchid, outTradeNo string) (*tradeunit.Order, error) {
	o, err := c.Store.OrderByOutTradeNo(ctx, mchid, outTradeNo)
	return o, confirm(ctx, c.Store, err)
}

func (c confirmed) Refund(ctx context.Context, mchid, outRefundNo string) (*tradeunit.Refund, error) {
	f, err := c.Store.Refund(ctx, mchid, outRefundNo)
	return f, confirm(ctx, c.Store, err)
}
