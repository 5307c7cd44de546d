package replicated

import (
	"context"
	"errors"
	"time"

	"tradeunit/dsn"
)

// follow applies every topology it receives.
func (s *Storage[S]) follow(ctx context.Context, topologies <-chan Topology) {
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
func (s *Storage[S]) apply(ctx context.Context, want Topology) {
	none := dsn.DSN{}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applied = true
	toCold := want.Cold && !s.cold
	s.cold, s.hasReplicas = want.Cold, len(want.Replicas) > 0
	if pend := s.pending; pend != nil && pend.dsn != want.Primary {
		pend.cancel()
		s.pending = nil
	}
	if cur := s.primary; toCold && cur != nil && cur.opened && cur.dsn != want.Primary {
		// The switch to a cold copy: the old primary is frozen and the
		// copy equal to it, so it keeps serving reads (and refusing
		// changes, which wait for the copy) until the copy is open.
		if s.pending == nil {
			s.pending = s.newPrimary(ctx, want.Primary)
			s.log.Info("storage: switching to the cold copy; the old primary serves reads until it is open",
				"old", cur.dsn, "new", want.Primary, "revision", want.Revision)
		}
	} else if cur == nil && want.Primary != none || cur != nil && cur.dsn != want.Primary {
		if cur != nil {
			s.log.Warn("storage: primary replaced in the storage topology; no longer using it",
				"old", cur.dsn, "new", want.Primary, "revision", want.Revision)
			s.dropPrimary(cur, s.cfg.Grace)
			s.primary = nil
		}
		if want.Primary != none {
			s.primary = s.newPrimary(ctx, want.Primary)
		}
		s.reportLocked()
	}

	if s.open.Replica == nil {
		return // replicas are not read
	}
	keep := make(map[dsn.DSN]bool, len(want.Replicas))
	for _, d := range want.Replicas {
		keep[d] = true
		if s.replicas[d] != nil {
			continue
		}
		r, err := s.newReplica(ctx, d)
		if err != nil {
			s.log.Error("storage: cannot use replica", "replica", d, "err", err)
			continue
		}
		s.replicas[d] = r
		s.log.Info("storage: replica added", "replica", d, "revision", want.Revision)
	}
	for d, r := range s.replicas {
		if !keep[d] {
			delete(s.replicas, d)
			time.AfterFunc(s.cfg.Grace, func() { r.store.Close() })
			s.log.Info("storage: replica removed", "replica", d, "revision", want.Revision)
		}
	}
}

func (s *Storage[S]) newReplica(ctx context.Context, d dsn.DSN) (*replica[S], error) {
	m, err := s.mysqlDSN(d)
	if err != nil {
		return nil, err
	}
	if m == "" {
		return nil, errors.New("SQLite has no replicas: a replica must be a mysql: DSN")
	}
	store, err := s.open.Replica(ctx, d, s.deps.Passwords)
	if err != nil {
		return nil, err
	}
	return &replica[S]{dsn: d, mysql: m, store: store}, nil
}

// newPrimary starts opening the primary d in the background. s.mu is held.
func (s *Storage[S]) newPrimary(ctx context.Context, d dsn.DSN) *primary[S] {
	p := &primary[S]{dsn: d}
	p.ctx, p.cancel = context.WithCancel(ctx)
	var err error
	if p.mysql, err = s.mysqlDSN(d); err != nil {
		p.openErr = err
		return p
	}
	p.openErr = errStillOpening
	s.wg.Add(1)
	go func() { defer s.wg.Done(); s.openPrimary(p) }()
	return p
}

// errStillOpening is a primary's openErr until its first attempt ends.
var errStillOpening = errors.New("still opening it")

// WaitOpen waits, until ctx ends, for the first topology to be applied and
// the first attempt at opening its primary to end, opened or not (an
// unreachable primary is an answer too): a program that serves before it
// would answer its first calls "still opening". It returns ctx's error if
// that came first.
func (s *Storage[S]) WaitOpen(ctx context.Context) error {
	for {
		s.mu.RLock()
		p := s.primary
		opening := !s.applied || p != nil && !p.opened && errors.Is(p.openErr, errStillOpening)
		s.mu.RUnlock()
		if !opening {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// openTimeout bounds one attempt at opening a primary: connect, create the
// database and migrate, check what it holds, inspect.
const openTimeout = 10 * time.Second

// openPrimary opens p's pool, retrying every CheckEvery until it succeeds
// or p is replaced. The opener checks what the primary holds (a primary
// holding another unit is refused); the primary is inspected before it is
// published, so that no change goes to a primary not yet known to be
// writable.
func (s *Storage[S]) openPrimary(p *primary[S]) {
	var logged string
	for {
		octx, cancel := context.WithTimeout(p.ctx, openTimeout)
		store, err := s.open.Primary(octx, p.dsn, s.deps.Passwords)
		cancel()
		if err == nil {
			st := s.inspect(p.ctx, p)
			s.mu.Lock()
			if s.pending == p { // the cold copy is open: break the old primary
				s.pending = nil
				if old := s.primary; old != nil {
					s.dropPrimary(old, s.cfg.Grace)
				}
				s.primary = p
			}
			if s.primary != p {
				s.mu.Unlock()
				store.Close()
				return
			}
			p.store, p.opened, p.openErr = store, true, nil
			s.record(p, st)
			s.log.Info("storage: primary open", "primary", p.dsn, "writable", p.writable, "why", p.why)
			s.mu.Unlock()
			return
		}
		s.mu.Lock()
		p.openErr = err
		s.reportLocked()
		s.mu.Unlock()
		if err.Error() != logged {
			logged = err.Error()
			s.log.Warn("storage: cannot open primary; retrying", "primary", p.dsn, "err", err)
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
func (s *Storage[S]) dropPrimary(p *primary[S], grace time.Duration) error {
	p.cancel()
	if hb := p.heartbeat; hb != nil {
		p.heartbeat = nil
		go hb.Stop()
	}
	store, opened := p.store, p.opened
	var none S
	p.store, p.opened = none, false
	if !opened {
		return nil
	}
	if grace <= 0 {
		return store.Close()
	}
	time.AfterFunc(grace, func() { store.Close() })
	return nil
}
