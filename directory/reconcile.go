// Package directory is the merchant-key directory's shard side: the
// reconciler that settles the attempts creates abandoned (see tradeunit's
// directory.go). The shard's storage is package store/dirstore; its service
// is that storage over gRPC (rpc.NewDirectoryServer), run by daemon/directoryd.
package directory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"tradeunit"
	"tradeunit/replicas"
	"tradeunit/routing"
)

// ReconcilerConfig tunes a Reconciler. Start from DefaultReconcilerConfig.
type ReconcilerConfig struct {
	// Every is the time between two passes over the abandoned attempts.
	Every time.Duration
	// Batch is how many entries one read of the shard returns.
	Batch int
	// StaleAfter is how long a pending entry must have waited before the
	// reconciler settles it: the proxies' (proxy.Config.StaleAfter).
	StaleAfter time.Duration
	// CallTimeout bounds one call to a unit.
	CallTimeout time.Duration
	// Shard is the shard the reconciler works for: it leaves alone the
	// entries of buckets the routing table gives another shard or freezes
	// (a move copies them as they are, so a change made here meanwhile
	// would be lost, and after the move this shard's copy is stale). 0:
	// every entry of the store.
	Shard routing.ShardID
}

// DefaultReconcilerConfig passes every second over the shard, in reads of
// 100 entries, and leaves pending entries alone for 6 s (the proxies'
// default unit timeout, twice).
func DefaultReconcilerConfig() ReconcilerConfig {
	return ReconcilerConfig{Every: time.Second, Batch: 100, StaleAfter: 6 * time.Second, CallTimeout: 3 * time.Second}
}

// Validate reports a setting that is not positive; it changes nothing.
func (c ReconcilerConfig) Validate() error {
	if c.Every <= 0 || c.Batch < 1 || c.StaleAfter <= 0 || c.CallTimeout <= 0 {
		return fmt.Errorf("directory: reconciler settings must be positive, got %+v", c)
	}
	return nil
}

// Reconciler settles, in one shard, every attempt that a create abandoned
// (its unit gave no answer or an unknown outcome): once the attempt's unit
// answers, SupersedeAttempt tells whether the attempt made an order; an
// order that is not the one the entry names is an orphan, closed with
// CloseSuperseded so that it can never be paid; the attempt then leaves the
// entry's list. A pending entry whose create gave up is settled the same
// way. Every step is idempotent: several reconcilers (one per shard
// replica) may run, and a pass may stop anywhere; the next resumes.
type Reconciler struct {
	cfg     ReconcilerConfig
	store   tradeunit.DirectoryStore
	routes  routing.Source
	dialer  tradeunit.LogicDialer
	log     *slog.Logger
	metrics *metrics
}

// NewReconciler returns a reconciler of the shard store, reaching units
// through routes and dialer.
func NewReconciler(cfg ReconcilerConfig, store tradeunit.DirectoryStore, routes routing.Source, dialer tradeunit.LogicDialer,
	reg prometheus.Registerer, log *slog.Logger) (*Reconciler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if store == nil || routes == nil || dialer == nil || reg == nil || log == nil {
		return nil, errors.New("directory: the reconciler needs a store, a routing table, a dialer, a registry and a logger")
	}
	return &Reconciler{cfg: cfg, store: store, routes: routes, dialer: dialer, log: log, metrics: newMetrics(reg)}, nil
}

// Run passes over the shard every cfg.Every until ctx ends.
func (r *Reconciler) Run(ctx context.Context) {
	tick := time.NewTicker(r.cfg.Every)
	defer tick.Stop()
	for {
		if _, err := r.Pass(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("directory reconciler: pass stopped; the next resumes", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// PassStats says what one pass did.
type PassStats struct {
	Entries int // entries with abandoned attempts seen
	Settled int // attempts settled and removed from their entries
	Closed  int // orphans closed
	Waiting int // attempts whose unit did not answer (left for the next pass)
	Cleared int // entries left with no abandoned attempt
	Moving  int // entries left alone: their bucket is frozen or another shard's
}

// Pass settles every abandoned attempt of the shard it can now.
func (r *Reconciler) Pass(ctx context.Context) (PassStats, error) {
	var st PassStats
	var after tradeunit.MerchantKey
	for {
		page, err := r.store.Abandoned(ctx, after, r.cfg.Batch)
		if err != nil {
			return st, err
		}
		for _, e := range page {
			after = e.Key
			if !r.holds(e.Key) {
				st.Moving++
				continue
			}
			st.Entries++
			r.entry(ctx, e, &st)
		}
		if len(page) < r.cfg.Batch {
			break
		}
	}
	r.metrics.backlog.Set(float64(st.Entries - st.Cleared))
	return st, nil
}

// entry settles what it can of one entry's abandoned attempts.
func (r *Reconciler) entry(ctx context.Context, e *tradeunit.DirectoryEntry, st *PassStats) {
	if e.Key.Kind != tradeunit.KeyOrder {
		// Only order creates abandon attempts: a refund is made on its
		// order's unit, which is idempotent per out_refund_no.
		return
	}
	if e.State == tradeunit.EntryPending {
		if time.Since(e.Updated) < r.cfg.StaleAfter {
			return // a create is working on it
		}
		settled, ok := r.settlePending(ctx, e)
		if !ok {
			st.Waiting++
			return
		}
		e = settled
	}
	var keep []tradeunit.Attempt
	for _, a := range e.Abandoned {
		done, closed := r.attempt(ctx, e, a)
		switch {
		case !done:
			keep = append(keep, a)
			st.Waiting++
		case closed:
			st.Closed++
			st.Settled++
		default:
			st.Settled++
		}
	}
	if len(keep) == len(e.Abandoned) {
		return
	}
	n := e.Next(func(n *tradeunit.DirectoryEntry) {
		n.Abandoned, n.Updated = keep, time.Now().UTC().Truncate(time.Microsecond)
	})
	if !r.holds(e.Key) {
		return // frozen while its units answered: the next pass, on whichever shard holds it, does it again
	}
	res := r.store.Put(ctx, []*tradeunit.DirectoryEntry{n})
	switch {
	case res[0].Err == nil && len(keep) == 0:
		st.Cleared++
	case res[0].Err != nil && !errors.Is(res[0].Err, tradeunit.ErrVersionConflict):
		r.log.Warn("directory reconciler: cannot record settled attempts; the next pass does it again", "key", e.Key, "err", res[0].Err)
	}
}

// settlePending settles a stale pending entry's own attempt: the order it
// made is committed, or the attempt is refused for good. Then, if the entry
// is still pending, an abandoned attempt's order (an order of the key that
// exists, which no client was told of) is committed instead. It returns the
// entry then, and false if a unit could not tell.
func (r *Reconciler) settlePending(ctx context.Context, e *tradeunit.DirectoryEntry) (*tradeunit.DirectoryEntry, bool) {
	for _, a := range append([]tradeunit.Attempt{e.Attempt}, e.Abandoned...) {
		o, err := r.supersede(ctx, e.Key, a)
		switch {
		case tradeunit.IsCode(err, tradeunit.CodeNotFound):
			continue
		case err != nil:
			return nil, false
		}
		n := e.CommittedTo(o)
		n.Attempt, n.Updated = a, time.Now().UTC().Truncate(time.Microsecond)
		if !r.holds(e.Key) {
			return nil, false
		}
		res := r.store.Put(ctx, []*tradeunit.DirectoryEntry{n})
		if res[0].Err != nil {
			return nil, false // changed meanwhile: the next pass sees it
		}
		r.log.Info("directory reconciler: committed the order of a create that gave up", "key", e.Key, "order_no", o.OrderNo)
		return res[0].Entry, true
	}
	return e, true
}

// attempt settles one abandoned attempt of e: it reports whether it is
// settled, and whether that closed an orphan.
func (r *Reconciler) attempt(ctx context.Context, e *tradeunit.DirectoryEntry, a tradeunit.Attempt) (done, closed bool) {
	o, err := r.supersede(ctx, e.Key, a)
	switch {
	case tradeunit.IsCode(err, tradeunit.CodeNotFound):
		return true, false // it made nothing, and never will
	case err != nil:
		return false, false
	case e.State == tradeunit.EntryCommitted && o.OrderNo == e.RecordNo:
		return true, false // the unit's order is the key's
	case e.State != tradeunit.EntryCommitted:
		return false, false // no winner yet
	}
	u, ok := r.routes.Current().Unit(a.Unit)
	if !ok {
		return false, false
	}
	_, _, err = replicas.Call(ctx, "unit "+u.ID.String(), u.LogicAddrs, r.cfg.CallTimeout, r.dialer.Conn,
		func(ctx context.Context, c tradeunit.LogicConn) (*tradeunit.Order, error) {
			return c.CloseSuperseded(ctx, e.Key.Mchid, o.OrderNo, e.RecordNo)
		})
	switch {
	case err == nil:
		r.metrics.closed.Inc()
		r.log.Info("directory reconciler: orphan closed", "key", e.Key, "orphan", o.OrderNo, "winner", e.RecordNo)
		return true, true
	case tradeunit.IsCode(err, tradeunit.CodeOrderPaid):
		// An orphan's number never leaves the system: a paid one is a
		// breach of the one-order guarantee, for people to look into.
		r.metrics.paidOrphans.Inc()
		r.log.Error("directory reconciler: an orphan order was paid", "key", e.Key, "orphan", o.OrderNo, "winner", e.RecordNo)
		return true, false
	}
	return false, false
}

// holds reports whether the reconciler may change key's entry (see
// ReconcilerConfig.Shard). It is asked again right before each write: a
// move freezes the bucket before it copies, and waits long enough for
// every reader of the table to see the freeze, so a write that checked
// first cannot land after the copy.
func (r *Reconciler) holds(key tradeunit.MerchantKey) bool {
	return r.cfg.Shard == 0 || refusal(r.routes.Current(), r.cfg.Shard, key) == nil
}

// supersede asks the attempt's unit to settle it.
func (r *Reconciler) supersede(ctx context.Context, key tradeunit.MerchantKey, a tradeunit.Attempt) (*tradeunit.Order, error) {
	u, ok := r.routes.Current().Unit(a.Unit)
	if !ok {
		return nil, tradeunit.Unavailable("directory.supersede", fmt.Sprintf("unit %d is not in the routing table", a.Unit), nil)
	}
	o, _, err := replicas.Call(ctx, "unit "+u.ID.String(), u.LogicAddrs, r.cfg.CallTimeout, r.dialer.Conn,
		func(ctx context.Context, c tradeunit.LogicConn) (*tradeunit.Order, error) {
			return c.SupersedeAttempt(ctx, key.Mchid, key.Value, a.ID)
		})
	if err != nil && !tradeunit.IsCode(err, tradeunit.CodeNotFound) {
		r.metrics.unreachable.Inc()
	}
	return o, err
}
