package failover

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"tradeunit"
	"tradeunit/admin"
	"tradeunit/replication"
	"tradeunit/routing"
)

func defaultOptions() admin.FailoverOptions { return admin.DefaultFailoverOptions() }

// options are the failover's, from the configuration; each step is logged.
func (c *Controller) options(log *slog.Logger) admin.FailoverOptions {
	o := defaultOptions()
	o.AdminUser, o.ReplUser, o.ApplyTimeout, o.AckTimeout = c.cfg.AdminUser, c.cfg.ReplUser, c.cfg.ApplyTimeout, c.cfg.AckTimeout
	o.Progress = func(s admin.FailoverStep) {
		log.Info("failover step", "step", s.Name, "took", s.Took, "detail", s.Detail)
		if c.cfg.AfterStep != nil {
			c.cfg.AfterStep(s.Name)
		}
	}
	return o
}

// unitOff reports whether the routing table labels unit id failover=off.
func unitOff(t *routing.Table, id tradeunit.UnitID) bool {
	if t == nil {
		return false
	}
	u, ok := t.Unit(id)
	return ok && u.Labels[OffLabel] == "off"
}

// judge counts a unit's failed rounds, decides, logs the decision with its
// evidence, and acts on it. start is when this round's check began.
func (c *Controller) judge(ctx context.Context, u routing.UnitStorage, e Evidence, start time.Time, table *routing.Table) {
	now := c.cfg.Now()
	c.mu.Lock()
	st := c.units[u.Unit]
	if st == nil {
		st = &unitState{}
		c.units[u.Unit] = st
	}
	switch {
	case e.NoPrimary, e.PrimaryErr == nil && e.PrimaryFenced:
		if st.since.IsZero() {
			st.since = start
		}
	case e.PrimaryErr != nil:
		if st.failures == 0 {
			st.since = start
		}
		st.failures++
	default:
		st.failures, st.since, st.stopped = 0, time.Time{}, false
	}
	e.Failures, e.OursStopped = st.failures, st.stopped
	if e.NoPrimary || e.PrimaryErr == nil && e.PrimaryFenced {
		e.NoPrimaryFor = now.Sub(st.since)
	}
	hourAgo := now.Add(-time.Hour)
	for len(c.recent) > 0 && !c.recent[0].After(hourAgo) {
		c.recent = c.recent[1:]
	}
	last := st.lastFailover
	if u.LastFailover.After(last) {
		last = u.LastFailover
	}
	b := Brakes{Off: c.cfg.Off || unitOff(table, u.Unit), LastFailover: last, Recent: len(c.recent)}
	since := st.since
	c.mu.Unlock()

	d := Decide(c.cfg, e, b, now)
	c.metrics.decisions.WithLabelValues(string(d.Outcome)).Inc()
	log := c.log.With("unit", u.Unit, "primary", u.Primary.Server())
	level := slog.LevelWarn
	if d.Outcome == Healthy {
		level = slog.LevelDebug // every round of every healthy unit
	}
	log.Log(ctx, level, "failover decision", "outcome", d.Outcome, "why", d.Why, "evidence", e.String())
	if d.Outcome == Failover || d.Outcome == Resume {
		c.failover(ctx, u.Unit, since, log)
	}
}

// failover runs the operator's failover of unit id; since is when its
// first failed check began (the RTO's start).
func (c *Controller) failover(ctx context.Context, id tradeunit.UnitID, since time.Time, log *slog.Logger) {
	start := c.cfg.Now()
	if since.IsZero() {
		since = start
	}
	log.Warn("failover starting", "detected", start.Sub(since).Round(time.Millisecond))
	res, err := c.deps.Failover.FailoverStorage(ctx, routing.UnitRef(id), c.options(log))
	done := c.cfg.Now()
	if errors.Is(err, replication.ErrNoSafeReplica) {
		// Refused before anything changed: not a failover for the damping,
		// and tried again next round.
		c.refused.Add(1)
		c.metrics.refused.Inc()
		log.Error("failover refused: no replica is safe to promote; trying again next round", "err", err)
		return
	}
	c.mu.Lock()
	c.recent = append(c.recent, start)
	st := c.units[id]
	st.lastFailover = done
	remapped := res != nil && res.Revision > 0
	st.stopped = !remapped
	if remapped {
		st.failures, st.since = 0, time.Time{}
	}
	c.mu.Unlock()
	if !remapped {
		c.metrics.errors.Inc()
		log.Error("failover failed; a stopped one is resumed next round", "err", err)
		return
	}
	rto := start.Sub(since) + res.Remapped
	c.failovers.Add(1)
	c.lastRTO.Store(int64(rto))
	c.metrics.failovers.Inc()
	c.metrics.lastRTO.Set(rto.Seconds())
	attrs := []any{"old_primary", res.OldPrimary.Server(), "old_fenced", res.OldFenced, "new_primary", res.NewPrimary.Server(),
		"revision", res.Revision, "rto", rto.Round(time.Millisecond), "took", res.Took.Round(time.Millisecond)}
	if err != nil {
		log.Warn("failover done, with an error", append(attrs, "err", err)...)
		return
	}
	log.Warn("failover done: new primary in the storage topology", attrs...)
}
