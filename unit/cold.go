package unit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"tradeunit"
	"tradeunit/orderno"
)

// ColdPolicy says what a unit does for orders once its data has moved to
// cold storage (package lifecycle), and how long an order can be refunded.
// A cold unit always serves reads.
type ColdPolicy struct {
	// UpdateWithin: a cold unit pays or closes an order only while it is
	// younger than this (by the time in its number); 0: never. An order
	// that old has long expired unpaid, so a payment for it is a mistake
	// to refuse clearly rather than a sale lost.
	UpdateWithin time.Duration
	// RefundWindow: an order is refunded only within this of its payment,
	// on any unit (WeChat Pay: one year); 0: no limit.
	RefundWindow time.Duration
}

// DefaultColdPolicy returns the policy of tradeunit unit: a cold unit
// pays or closes orders of the last day only, and refunds within a year
// of payment.
func DefaultColdPolicy() ColdPolicy {
	return ColdPolicy{UpdateWithin: 24 * time.Hour, RefundWindow: 365 * 24 * time.Hour}
}

// Validate reports a negative duration; it changes nothing.
func (p ColdPolicy) Validate() error {
	if p.UpdateWithin < 0 || p.RefundWindow < 0 {
		return tradeunit.Errorf(tradeunit.CodeParamError, "cold policy: durations must not be negative, got %+v", p)
	}
	return nil
}

// DefaultFreezeWait is how long a change waits for a frozen storage by
// default: under the proxy's 3 s call timeout, so that a change that
// waits is still answered to the merchant.
const DefaultFreezeWait = 2500 * time.Millisecond

// coldStorage is a Storage that knows whether its primary is the unit's
// cold copy (store/replicated's, following the topology).
type coldStorage interface{ Cold() bool }

func (s *Service) cold() bool {
	c, ok := s.storage.(coldStorage)
	return ok && c.Cold()
}

// checkUpdate refuses to pay or close an order of a cold unit older than
// the policy allows.
func (s *Service) checkUpdate(orderNo, what string) error {
	if !s.cold() {
		return nil
	}
	no, err := orderno.Parse(orderNo)
	if err != nil {
		return orderno.AsParamError(err)
	}
	if within := s.coldPolicy.UpdateWithin; within == 0 || s.now().Sub(no.Time) > within {
		return tradeunit.Errorf(tradeunit.CodeOrderArchived,
			"order %s is archived in cold storage and can no longer be %s; it can still be read and refunded", orderNo, what)
	}
	return nil
}

// checkRefundWindow refuses a refund of an order paid longer ago than the
// refund window.
func (s *Service) checkRefundWindow(o *tradeunit.Order) error {
	w := s.coldPolicy.RefundWindow
	if w == 0 || o.SuccessTime.IsZero() || s.now().Sub(o.SuccessTime) <= w {
		return nil
	}
	return tradeunit.Errorf(tradeunit.CodeRefundExpired, "order %s was paid on %s, more than %s ago: it can no longer be refunded",
		o.OrderNo, o.SuccessTime.Format(time.DateOnly), formatWindow(w))
}

func formatWindow(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	}
	return d.String()
}

// change runs fn on the unit's primary of the moment. A change refused
// because the storage is frozen (it is being switched to its cold copy)
// wrote nothing, so it is tried again, with a short back-off, until it is
// taken by the cold copy or freezeWait has passed: the merchant sees a
// slower call, not a refusal. While it waits, the primary may be missing
// for a moment (the copy opening); that too is waited out.
func change[T any](ctx context.Context, s *Service, fn func(tradeunit.Store) (T, error)) (T, error) {
	var deadline time.Time
	backoff := 2 * time.Millisecond
	for {
		var v T
		store, err := s.storage.Primary()
		if err == nil {
			if v, err = fn(store); !errors.Is(err, tradeunit.ErrStorageFrozen) {
				return v, err
			}
		} else if deadline.IsZero() {
			return v, err // not waiting for a switch: the unit is down
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(s.freezeWait)
		}
		if time.Now().Add(backoff).After(deadline) {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 50*time.Millisecond)
	}
}
