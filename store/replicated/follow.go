package replicated

import (
	"context"
	"errors"
	"time"

	"tradeunit/routing"
	"tradeunit/store/sqlstore"
)

// follow applies every table the routing table publishes.
func (s *Storage) follow(ctx context.Context, tables <-chan *routing.Table) {
	for t := range tables {
		s.apply(ctx, t)
	}
}

// apply makes the storage match the unit's entry of t: the primary first
// (so that no change goes to a primary the table no longer names), then
// the replicas.
func (s *Storage) apply(ctx context.Context, t *routing.Table) {
	var want routing.Storage
	if u, ok := t.Unit(s.cfg.Unit); ok {
		want = u.Storage
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur := s.primary; cur == nil && want.Primary != "" || cur != nil && cur.dsn != want.Primary {
		if cur != nil {
			s.log.Warn("unit storage: primary replaced in the routing table; no longer using it",
				"old", sqlstore.Redact(cur.dsn), "new", sqlstore.Redact(want.Primary), "revision", t.Revision)
			s.dropPrimary(cur, s.cfg.Grace)
			s.primary = nil
		}
		if want.Primary != "" {
			p := &primary{dsn: want.Primary}
			p.ctx, p.cancel = context.WithCancel(ctx)
			var err error
			if p.mysql, err = mysqlDSN(want.Primary); err != nil {
				p.openErr = err
			} else {
				p.openErr = errors.New("still opening it")
				s.wg.Add(1)
				go func() { defer s.wg.Done(); s.openPrimary(p) }()
			}
			s.primary = p
		}
		s.reportLocked()
	}

	keep := make(map[string]bool, len(want.Replicas))
	for _, dsn := range want.Replicas {
		keep[dsn] = true
		if s.replicas[dsn] != nil {
			continue
		}
		r, err := newReplica(ctx, dsn)
		if err != nil {
			s.log.Error("unit storage: cannot use replica", "replica", sqlstore.Redact(dsn), "err", err)
			continue
		}
		s.replicas[dsn] = r
		s.log.Info("unit storage: replica added", "replica", sqlstore.Redact(dsn), "revision", t.Revision)
	}
	for dsn, r := range s.replicas {
		if !keep[dsn] {
			delete(s.replicas, dsn)
			time.AfterFunc(s.cfg.Grace, func() { r.store.Close() })
			s.log.Info("unit storage: replica removed", "replica", sqlstore.Redact(dsn), "revision", t.Revision)
		}
	}
}

func newReplica(ctx context.Context, dsn string) (*replica, error) {
	m, err := mysqlDSN(dsn)
	if err != nil {
		return nil, err
	}
	if m == "" {
		return nil, errors.New("SQLite has no replicas: a replica must be a mysql: DSN")
	}
	store, err := sqlstore.OpenReplica(ctx, dsn)
	if err != nil {
		return nil, err
	}
	return &replica{dsn: dsn, mysql: m, store: store}, nil
}

// openTimeout bounds one attempt at opening a primary: connect, create the
// database and migrate, bind the unit, inspect.
const openTimeout = 10 * time.Second

// openPrimary opens p's pool, retrying every CheckEvery until it succeeds
// or p is replaced. It binds the unit (a primary holding another unit is
// refused) and inspects the primary before publishing it, so that no
// change goes to a primary not yet known to be writable.
func (s *Storage) openPrimary(p *primary) {
	var logged string
	for {
		octx, cancel := context.WithTimeout(p.ctx, openTimeout)
		store, err := sqlstore.Open(octx, p.dsn)
		if err == nil {
			if err = store.BindUnit(octx, s.cfg.Unit); err != nil {
				store.Close()
			}
		}
		cancel()
		if err == nil {
			st := s.inspect(p.ctx, p)
			s.mu.Lock()
			if s.primary != p {
				s.mu.Unlock()
				store.Close()
				return
			}
			p.store, p.reader, p.openErr = store, store, nil
			if p.mysql != "" {
				p.reader = confirmed{Store: store, s: store}
			}
			s.record(p, st)
			s.log.Info("unit storage: primary open", "primary", sqlstore.Redact(p.dsn), "writable", p.writable, "why", p.why)
			s.mu.Unlock()
			return
		}
		s.mu.Lock()
		p.openErr = err
		s.reportLocked()
		s.mu.Unlock()
		if err.Error() != logged {
			logged = err.Error()
			s.log.Warn("unit storage: cannot open primary; retrying", "primary", sqlstore.Redact(p.dsn), "err", err)
		}
		select {
		case <-p.ctx.Done():
			return
		case <-time.After(s.cfg.CheckEvery):
		}
	}
}

// dropPrimary stops using p: its heartbeat writer stops, and its pool
// closes after grace, so that calls in flight on it end on their own. s.mu
// is held.
func (s *Storage) dropPrimary(p *primary, grace time.Duration) error {
	p.cancel()
	if hb := p.heartbeat; hb != nil {
		p.heartbeat = nil
		go hb.Stop()
	}
	store := p.store
	p.store, p.reader = nil, nil
	if store == nil {
		return nil
	}
	if grace <= 0 {
		return store.Close()
	}
	time.AfterFunc(grace, func() { store.Close() })
	return nil
}
