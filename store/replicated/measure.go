package replicated

import (
	"context"
	"errors"
	"sync"
	"time"

	"tradeunit/replication"
)

// measure checks the primary every CheckEvery and the replicas' lag every
// LagEvery until ctx ends.
func (s *Storage[S]) measure(ctx context.Context) {
	check := time.NewTicker(s.cfg.CheckEvery)
	defer check.Stop()
	lag := time.NewTicker(s.cfg.LagEvery)
	defer lag.Stop()
	var lagging sync.WaitGroup
	defer lagging.Wait()
	measuring := false
	lagDone := make(chan struct{}, 1)
	for {
		select {
		case <-ctx.Done():
			return
		case <-check.C:
			s.checkPrimary(ctx)
		case <-lag.C:
			// One round at a time: a hung replica must not pile rounds up.
			if !measuring {
				measuring = true
				lagging.Add(1)
				go func() {
					defer lagging.Done()
					s.measureReplicas(ctx)
					lagDone <- struct{}{}
				}()
			}
		case <-lagDone:
			measuring = false
		}
	}
}

// status is the outcome of one inspection of a primary.
type status struct {
	st  replication.Status
	err error
}

// inspect reads the primary's state as the application user; a SQLite
// primary is always writable.
func (s *Storage[S]) inspect(ctx context.Context, p *primary[S]) status {
	if p.mysql == "" {
		return status{}
	}
	ctx, cancel := context.WithTimeout(ctx, max(s.cfg.CheckEvery, 500*time.Millisecond))
	defer cancel()
	st, err := replication.InspectPrimary(ctx, p.mysql)
	return status{st, err}
}

// checkPrimary inspects the primary, records what it found and starts the
// heartbeat writer on a writable primary that has none.
func (s *Storage[S]) checkPrimary(ctx context.Context) {
	s.mu.RLock()
	p := s.primary
	open := p != nil && p.opened
	s.mu.RUnlock()
	if !open {
		return // openPrimary is at work, or there is none
	}
	st := s.inspect(ctx, p)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.primary != p || ctx.Err() != nil {
		return
	}
	s.record(p, st)
	if p.writable && p.mysql != "" && s.open.Replica != nil && p.heartbeat == nil && !p.heartbeatStarting {
		p.heartbeatStarting = true
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.startHeartbeat(p) }()
	}
}

// record applies an inspection of p and reports the storage's health if
// it changed; s.mu is held.
func (s *Storage[S]) record(p *primary[S], st status) {
	p.checked = true
	switch {
	case p.mysql == "":
		p.reachable, p.writable, p.why = true, true, ""
	case st.err != nil:
		p.reachable = !errors.Is(st.err, replication.ErrUnreachable)
		p.writable, p.why = false, "cannot be inspected: "+st.err.Error()
		if !p.reachable {
			p.why = "unreachable"
		}
	case !s.hasReplicas:
		p.reachable = true
		p.writable, p.why = st.st.WritableAlone()
	default:
		p.reachable = true
		p.writable, p.why = st.st.Writable(s.cfg.MaxAckWait)
	}
	s.reportLocked()
}

// reportLocked tells OnHealth whether the storage can take changes, when
// that changed; s.mu is held.
func (s *Storage[S]) reportLocked() {
	serving, why := false, ""
	switch p := s.primary; {
	case p == nil:
		why = "no primary in the storage topology (failing over)"
	case !p.opened:
		why = "primary not open: " + p.openErr.Error()
	case !p.writable:
		why = "primary " + p.why
	default:
		serving = true
	}
	if s.reported && serving == s.serving && why == s.lastWhy {
		return
	}
	s.reported, s.serving, s.lastWhy = true, serving, why
	if serving {
		s.log.Info("storage: serving", "primary", s.primary.dsn)
	} else {
		s.log.Warn("storage: not serving changes", "why", why)
	}
	s.deps.OnHealth(serving, why)
}

// startHeartbeat starts the heartbeat writer on p, as the application
// user (read_only stops it when p is fenced), for as long as p is the
// primary.
func (s *Storage[S]) startHeartbeat(p *primary[S]) {
	hb, err := replication.StartHeartbeat(p.ctx, p.mysql, s.cfg.Heartbeat)
	s.mu.Lock()
	defer s.mu.Unlock()
	p.heartbeatStarting = false
	if err != nil {
		s.log.Warn("storage: cannot start the heartbeat on the primary; retrying", "err", err)
		return
	}
	if s.primary != p {
		go hb.Stop()
		return
	}
	p.heartbeat = hb
}

// measureReplicas measures every replica's lag at once.
func (s *Storage[S]) measureReplicas(ctx context.Context) {
	s.mu.RLock()
	rs := make([]*replica[S], 0, len(s.replicas))
	for _, r := range s.replicas {
		rs = append(rs, r)
	}
	s.mu.RUnlock()
	var wg sync.WaitGroup
	for _, r := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			mctx, cancel := context.WithTimeout(ctx, max(s.cfg.LagEvery, 500*time.Millisecond))
			age, known, err := replication.HeartbeatAge(mctx, r.mysql)
			cancel()
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.replicas[r.dsn] != r {
				return
			}
			if err != nil && r.reachable {
				s.log.Warn("storage: replica unreachable; not reading it", "replica", r.dsn, "err", err)
			}
			r.reachable, r.known, r.lag, r.measuredAt = err == nil, known, age, start
		}()
	}
	wg.Wait()
}
