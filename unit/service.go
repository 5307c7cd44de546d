// Package unit is the logic service of one transaction unit: the business
// rules over the unit's own storage. It is stateless apart from its block of
// sequence numbers, so any number of replicas can serve one unit.
package unit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"tradeunit"
	"tradeunit/batch"
	"tradeunit/orderno"
)

// Service implements tradeunit.OrderService for one unit.
type Service struct {
	unit    tradeunit.UnitID
	storage tradeunit.Storage
	seq     *Sequencer
	now     func() time.Time
	creates *batch.Batcher[*tradeunit.Order, tradeunit.CreateResult]
	changes *batch.Batcher[onPrimary[tradeunit.OrderChange], tradeunit.ChangeResult]
	refunds *batch.Batcher[onPrimary[*tradeunit.Refund], tradeunit.RefundResult]

	coldPolicy ColdPolicy
	freezeWait time.Duration
}

var _ tradeunit.OrderService = (*Service)(nil)

// Config configures a Service. Start from DefaultConfig.
type Config struct {
	Unit          tradeunit.UnitID
	SequenceBlock int64            // numbers reserved per storage round trip, at least 1
	Now           func() time.Time // the clock; time.Now if nil
	// Batch groups concurrent creates into one storage transaction (group
	// commit): one commit, and so one sync to disk, for many orders.
	Batch batch.Config
	// ChangeBatch groups concurrent pays and closes the same way, and
	// concurrent refunds (in transactions of their own: a refund is a
	// change of a paid order, a pay or close of an unpaid one).
	ChangeBatch batch.Config
	// Cold is what the unit still does once its data is in cold storage.
	Cold ColdPolicy
	// FreezeWait bounds how long a change waits while the storage is
	// frozen for the switch to its cold copy.
	FreezeWait time.Duration
}

// DefaultConfig returns the settings of the logic service of unit id.
func DefaultConfig(id tradeunit.UnitID) Config {
	return Config{Unit: id, SequenceBlock: DefaultSequenceBlock, Batch: batch.DefaultConfig(),
		ChangeBatch: batch.DefaultConfig(), Cold: DefaultColdPolicy(), FreezeWait: DefaultFreezeWait}
}

// Validate reports a bad setting; it changes nothing.
func (c Config) Validate() error {
	if err := c.Unit.Validate(); err != nil {
		return err
	}
	if c.SequenceBlock < 1 {
		return tradeunit.Errorf(tradeunit.CodeParamError, "sequence block must be at least 1, got %d", c.SequenceBlock)
	}
	if c.FreezeWait < 0 {
		return tradeunit.Errorf(tradeunit.CodeParamError, "freeze wait must not be negative, got %s", c.FreezeWait)
	}
	return errors.Join(c.Batch.Validate(), c.ChangeBatch.Validate(), c.Cold.Validate())
}

// New returns the logic service of cfg.Unit over store, its one storage:
// every call goes to it.
func New(cfg Config, store tradeunit.Store) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := store.BindUnit(ctx, cfg.Unit); err != nil {
		return nil, fmt.Errorf("unit %d: %w", cfg.Unit, err)
	}
	return NewWithStorage(cfg, tradeunit.FixedStorage(store))
}

// NewWithStorage returns the logic service of cfg.Unit over a storage that
// may change under it: a primary and replicas that follow the routing table
// (package store/replicated). The storage binds each primary it opens to
// the unit (Store.BindUnit).
func NewWithStorage(cfg Config, storage tradeunit.Storage) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	s := &Service{unit: cfg.Unit, storage: storage, seq: NewSequencer(primaryAllocator{storage}, cfg.SequenceBlock), now: now,
		coldPolicy: cfg.Cold, freezeWait: cfg.FreezeWait}
	var err error
	if s.creates, err = batch.New(cfg.Batch, s.createBatch); err != nil {
		return nil, err
	}
	if s.changes, err = batch.New(cfg.ChangeBatch, changeBatch); err != nil {
		s.creates.Close()
		return nil, err
	}
	if s.refunds, err = batch.New(cfg.ChangeBatch, refundBatch); err != nil {
		s.creates.Close()
		s.changes.Close()
		return nil, err
	}
	return s, nil
}

// CreateStats returns what the group commit of creates has committed.
func (s *Service) CreateStats() batch.Stats { return s.creates.Stats() }

// ChangeStats returns what the group commit of pays and closes has
// committed.
func (s *Service) ChangeStats() batch.Stats { return s.changes.Stats() }

// RefundStats returns what the group commit of refunds has committed.
func (s *Service) RefundStats() batch.Stats { return s.refunds.Stats() }

// Close answers the creates, pays, closes and refunds already taken and
// refuses new ones; it does not close the storage.
func (s *Service) Close() error {
	return errors.Join(s.creates.Close(), s.changes.Close(), s.refunds.Close())
}

// createBatch creates a batch of orders in one transaction of the primary
// of the moment.
func (s *Service) createBatch(ctx context.Context, orders []*tradeunit.Order) []tradeunit.CreateResult {
	store, err := s.storage.Primary()
	if err != nil {
		results := make([]tradeunit.CreateResult, len(orders))
		for i := range results {
			results[i].Err = err
		}
		return results
	}
	return store.CreateOrders(ctx, orders)
}

// Unit returns the unit this service serves.
func (s *Service) Unit() tradeunit.UnitID { return s.unit }

func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// CreateOrder creates an order in this unit, numbering it with this unit's
// number and the next sequence number of the unit.
func (s *Service) CreateOrder(ctx context.Context, r tradeunit.CreateOrderRequest) (*tradeunit.Order, error) {
	r.Normalize()
	if err := r.Validate(); err != nil {
		return nil, err
	}
	seq, err := s.seq.Next(ctx)
	if err != nil {
		if tradeunit.IsCode(err, tradeunit.CodeUnitUnavailable) {
			return nil, err
		}
		return nil, tradeunit.Internal("unit.CreateOrder: next sequence", err)
	}
	now := s.clock()
	no, err := orderno.New(s.unit, now, seq)
	if err != nil {
		return nil, tradeunit.Internal("unit.CreateOrder: number order", err)
	}
	o := &tradeunit.Order{
		OrderNo: no.String(), Mchid: r.Mchid, OutTradeNo: r.OutTradeNo, Description: r.Description,
		Amount: r.Amount, AbandonedUnits: r.AbandonedUnits, Attempt: r.Attempt, CreateTime: now,
	}
	res, err := s.creates.Do(ctx, o)
	if err == nil {
		err = res.Err
	}
	if err != nil {
		return nil, err
	}
	if stored := res.Stored; !res.Created && !stored.SameRequest(r) {
		return nil, tradeunit.Errorf(tradeunit.CodeOutTradeNoUsed,
			"out_trade_no %s was already used for an order with a different description or amount", r.OutTradeNo)
	}
	return res.Stored, nil
}

// Order returns one of the merchant's orders in this unit.
func (s *Service) Order(ctx context.Context, mchid, orderNo string) (*tradeunit.Order, error) {
	if err := s.checkOrderNo(orderNo); err != nil {
		return nil, err
	}
	o, err := read(ctx, s.storage, func(store tradeunit.Store) (*tradeunit.Order, error) {
		return store.Order(ctx, orderNo)
	}, orderRead)
	if err != nil {
		return nil, err
	}
	if o.Mchid != mchid {
		return nil, tradeunit.Errorf(tradeunit.CodeNotFound, "order %s does not exist", orderNo)
	}
	return o, nil
}

// OrderByOutTradeNo returns the merchant's order with the given merchant
// order number, if it is in this unit.
func (s *Service) OrderByOutTradeNo(ctx context.Context, mchid, outTradeNo string) (*tradeunit.Order, error) {
	if err := tradeunit.ValidateMchid(mchid); err != nil {
		return nil, err
	}
	if err := tradeunit.ValidateOutTradeNo(outTradeNo); err != nil {
		return nil, err
	}
	return read(ctx, s.storage, func(store tradeunit.Store) (*tradeunit.Order, error) {
		return store.OrderByOutTradeNo(ctx, mchid, outTradeNo)
	}, orderRead)
}

// PayOrder marks the order paid by r.PaymentID.
func (s *Service) PayOrder(ctx context.Context, r tradeunit.PayOrderRequest) (*tradeunit.Order, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	if err := s.checkOrderNo(r.OrderNo); err != nil {
		return nil, err
	}
	if err := s.checkUpdate(r.OrderNo, "paid"); err != nil {
		return nil, err
	}
	return s.changeOrder(ctx, tradeunit.OrderChange{Kind: tradeunit.ChangePay, Mchid: r.Mchid, OrderNo: r.OrderNo, PaymentID: r.PaymentID})
}

// CloseOrder closes an unpaid order.
func (s *Service) CloseOrder(ctx context.Context, mchid, orderNo string) (*tradeunit.Order, error) {
	if err := tradeunit.ValidateMchid(mchid); err != nil {
		return nil, err
	}
	if err := s.checkOrderNo(orderNo); err != nil {
		return nil, err
	}
	if err := s.checkUpdate(orderNo, "closed"); err != nil {
		return nil, err
	}
	return s.changeOrder(ctx, tradeunit.OrderChange{Kind: tradeunit.ChangeClose, Mchid: mchid, OrderNo: orderNo})
}

// CreateRefund refunds part or all of a paid order.
func (s *Service) CreateRefund(ctx context.Context, r tradeunit.CreateRefundRequest) (*tradeunit.Refund, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	if err := s.checkOrderNo(r.OrderNo); err != nil {
		return nil, err
	}
	if r.Amount.Currency == "" || s.coldPolicy.RefundWindow > 0 {
		// A refund is in its order's currency unless the caller says
		// otherwise; a stated currency must match it. And an order paid
		// too long ago is not refunded.
		store, err := s.storage.Primary()
		if err != nil {
			return nil, err
		}
		o, err := store.Order(ctx, r.OrderNo)
		if err != nil {
			return nil, err
		}
		if o.Mchid != r.Mchid {
			return nil, tradeunit.Errorf(tradeunit.CodeNotFound, "order %s does not exist", r.OrderNo)
		}
		if err := s.checkRefundWindow(o); err != nil {
			return nil, err
		}
		if r.Amount.Currency == "" {
			r.Amount.Currency = o.Amount.Currency
		}
	}
	m, err := change(ctx, s, func(store tradeunit.Store) (tradeunit.RefundResult, error) {
		res, err := s.refunds.Do(ctx, onPrimary[*tradeunit.Refund]{store: store, item: &tradeunit.Refund{
			OutRefundNo: r.OutRefundNo, Mchid: r.Mchid, OrderNo: r.OrderNo, Amount: r.Amount,
			Reason: r.Reason, CreateTime: s.clock(),
		}})
		if err == nil {
			err = res.Err
		}
		return res, err
	})
	if err != nil {
		return nil, err
	}
	stored, created := m.Stored, m.Created
	if !created && !stored.SameRequest(r) {
		return nil, tradeunit.Errorf(tradeunit.CodeOutRefundNoUsed,
			"out_refund_no %s was already used for a different refund", r.OutRefundNo)
	}
	return stored, nil
}

// Refund returns one of the merchant's refunds in this unit.
func (s *Service) Refund(ctx context.Context, mchid, outRefundNo string) (*tradeunit.Refund, error) {
	if err := tradeunit.ValidateMchid(mchid); err != nil {
		return nil, err
	}
	if err := tradeunit.ValidateOutRefundNo(outRefundNo); err != nil {
		return nil, err
	}
	return read(ctx, s.storage, func(store tradeunit.Store) (*tradeunit.Refund, error) {
		return store.Refund(ctx, mchid, outRefundNo)
	}, refundRead)
}

// SupersedeAttempt settles a directory attempt on this unit (see
// tradeunit.OrderService).
func (s *Service) SupersedeAttempt(ctx context.Context, mchid, outTradeNo string, attempt uint64) (*tradeunit.Order, error) {
	if err := (tradeunit.MerchantKey{Mchid: mchid, Kind: tradeunit.KeyOrder, Value: outTradeNo}).Validate(); err != nil {
		return nil, err
	}
	return change(ctx, s, func(store tradeunit.Store) (*tradeunit.Order, error) {
		return store.SupersedeAttempt(ctx, mchid, outTradeNo, attempt)
	})
}

// CloseSuperseded closes an orphan order (see tradeunit.OrderService).
func (s *Service) CloseSuperseded(ctx context.Context, mchid, orderNo, winner string) (*tradeunit.Order, error) {
	if err := tradeunit.ValidateMchid(mchid); err != nil {
		return nil, err
	}
	if err := s.checkOrderNo(orderNo); err != nil {
		return nil, err
	}
	if _, err := orderno.Parse(winner); err != nil {
		return nil, orderno.AsParamError(err)
	}
	if winner == orderNo {
		return nil, tradeunit.Errorf(tradeunit.CodeInvalidRequest, "order %s cannot supersede itself", orderNo)
	}
	return change(ctx, s, func(store tradeunit.Store) (*tradeunit.Order, error) {
		return store.CloseSuperseded(ctx, mchid, orderNo, winner, s.clock())
	})
}

// checkOrderNo rejects a malformed number and one of another unit: a call
// routed here by a stale routing table must not act on a wrong order.
func (s *Service) checkOrderNo(orderNo string) error {
	u, err := orderno.UnitOf(orderNo)
	if err != nil {
		return orderno.AsParamError(err)
	}
	if u != s.unit {
		return tradeunit.Errorf(tradeunit.CodeNotFound, "order %s does not exist", orderNo)
	}
	return nil
}
