package replicated

import (
	"context"
	"errors"
	"time"

	"tradeunit/dsn"
	"tradeunit/store/sqlstore"
)

// follow applies every topology it receives.
func (s *Storage) follow(ctx context.Context, topologies <-chan Topology) {
	for {
		select {
		case <-ctx.Done():
			return
		case t, ok := <-topologies:
			if !ok {
				return
			}
			s.apply(ctx, t)
		}
	}
}

// apply makes the storage match want: the primary first (so that no change
// goes to a primary the topology no longer names), then the replicas.
func (s *Storage) apply(ctx context.Context, want Topology) {
	none := dsn.DSN{}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur := s.primary; cur == nil && want.Primary != none || cur != nil && cur.dsn != want.Primary {
		if cur != nil {
			s.log.Warn("unit storage: primary replaced in the storage topology; no longer using it",
				"old", cur.dsn, "new", want.Primary, "revision", want.Revision)
			s.dropPrimary(cur, s.cfg.Grace)
			s.primary = nil
		}
		if want.Primary != none {
			p := &primary{dsn: want.Primary}
			p.ctx, p.cancel = context.WithCancel(ctx)
			var err error
			if p.mysql, err = s.mysqlDSN(want.Primary); err != nil {
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

	keep := make(map[dsn.DSN]bool, len(want.Replicas))
	for _, d := range want.Replicas {
		keep[d] = true
		if s.replicas[d] != nil {
			continue
		}
		r, err := s.newReplica(ctx, d)
		if err != nil {
			s.log.Error("unit storage: cannot use replica", "replica", d, "err", err)
			continue
		}
		s.replicas[d] = r
		s.log.Info("unit storage: replica added", "replica", d, "revision", want.Revision)
	}
	for d, r := range s.replicas {
		if !keep[d] {
			delete(s.replicas, d)
			time.AfterFunc(s.cfg.Grace, func() { r.store.Close() })
			s.log.Info("unit storage: replica removed", "replica", d, "revision", want.Revision)
		}
	}
}

func (s *Storage) newReplica(ctx context.Context, d dsn.DSN) (*replica, error) {
	m, err := s.mysqlDSN(d)
	if err != nil {
		return nil, err
	}
	if m == "" {
		return nil, errors.New("SQLite has no replicas: a replica must be a mysql: DSN")
	}
	store, err := sqlstore.OpenReadOnly(ctx, d, s.deps.Passwords)
	if err != nil {
		return nil, err
	}
	return &replica{dsn: d, mysql: m, store: store}, nil
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
		store, err := sqlstore.Open(octx, p.dsn, s.deps.Passwords)
		if err == nil {
			if err = store.BindUnit(octx, s.deps.Unit); err != nil {
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
			s.log.Info("unit storage: primary open", "primary", p.dsn, "writable", p.writable, "why", p.why)
			s.mu.Unlock()
			return
		}
		s.mu.Lock()
		p.openErr = err
		s.reportLocked()
		s.mu.Unlock()
		if err.Error() != logged {
			logged = err.Error()
			s.log.Warn("unit storage: cannot open primary; retrying", "primary", p.dsn, "err", err)
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
