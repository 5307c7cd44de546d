package query

import (
	"context"
	"sync"
	"time"

	"tradeunit"
)

// Lazy is a Reader over the query store at target that opens it when first
// needed and, while it cannot, answers QUERY_STORE_UNAVAILABLE: a program
// whose live path must not depend on the query store (the proxy) starts
// and serves with it down.
type Lazy struct {
	target string
	cfg    Config

	mu    sync.Mutex
	store *Store
}

var _ Reader = (*Lazy)(nil)

// NewLazy returns a Lazy over target; nothing is opened yet.
func NewLazy(target string, cfg Config) *Lazy { return &Lazy{target: target, cfg: cfg} }

func (l *Lazy) open(ctx context.Context) (*Store, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.store != nil {
		return l.store, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	s, err := Open(ctx, l.target, l.cfg)
	if err != nil {
		if tradeunit.IsCode(err, tradeunit.CodeParamError) {
			return nil, err
		}
		return nil, tradeunit.Errorf(tradeunit.CodeQueryUnavailable, "the query store cannot be reached; the live order API is not affected: %v", err)
	}
	l.store = s
	return s, nil
}

// ListOrders implements Reader.
func (l *Lazy) ListOrders(ctx context.Context, q ListQuery) (OrderPage, error) {
	s, err := l.open(ctx)
	if err != nil {
		return OrderPage{}, err
	}
	return s.ListOrders(ctx, q)
}

// DailyStats implements Reader.
func (l *Lazy) DailyStats(ctx context.Context, mchid string, day Date) (Stats, error) {
	s, err := l.open(ctx)
	if err != nil {
		return Stats{}, err
	}
	return s.DailyStats(ctx, mchid, day)
}

// TradeBill implements Reader.
func (l *Lazy) TradeBill(ctx context.Context, mchid string, day Date) (Bill, error) {
	s, err := l.open(ctx)
	if err != nil {
		return Bill{}, err
	}
	return s.TradeBill(ctx, mchid, day)
}

// AsOf implements Reader.
func (l *Lazy) AsOf(ctx context.Context) (time.Time, error) {
	s, err := l.open(ctx)
	if err != nil {
		return time.Time{}, err
	}
	return s.AsOf(ctx)
}

// Zone implements Reader.
func (l *Lazy) Zone() *time.Location { return l.cfg.Zone }

// Close closes the store if it was opened.
func (l *Lazy) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.store == nil {
		return nil
	}
	return l.store.Close()
}
