// Package relay publishes a unit's outbox: every order event its storage
// committed reaches the event bus at least once, none skipped, each order's
// events in order, while the live path never waits for it.
//
// Several relays of a unit may run; a lease row in the unit's own storage
// decides which one publishes, and the same row holds its cursor, so a relay
// that lost the lease can publish a duplicate but never move the cursor (see
// tradeunit.Outbox). The relay asks the unit's Storage for its primary at
// every step, so it follows a failover: on a new primary it starts again
// from the cursor that primary holds.
package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"tradeunit"
)

// Publisher is the event bus as the relay sees it: Publish returns once the
// bus has every event, or an error (the relay publishes them again).
type Publisher interface {
	Publish(ctx context.Context, events []tradeunit.OrderEvent) error
}

// Config is a relay's configuration. Start from DefaultConfig.
type Config struct {
	// Unit is the unit whose outbox it publishes.
	Unit tradeunit.UnitID
	// Lease names the lease and cursor in the unit's storage: relays with
	// the same name share one cursor.
	Lease string
	// Holder names this relay in the lease (default host:pid).
	Holder string
	// LeaseTTL is how long a lease lasts unrenewed: how soon another relay
	// takes over from one that died.
	LeaseTTL time.Duration
	// Batch is the most events read and published at once.
	Batch int
	// Idle is how long the relay waits after a read that found nothing new.
	Idle time.Duration
	// Retry is how long it waits after a failure (storage, bus, lease held).
	Retry time.Duration
	// GapSettle is how old a gap must be before the relay asks which
	// transactions may still fill it (MySQL answers from a cache that may be
	// 100 ms old, and waits if asked earlier), and how often it asks again
	// whether they have ended: MySQL refreshes that cache only after 100 ms
	// unread, so asking more often would never see them end.
	GapSettle time.Duration
}

// DefaultConfig returns the configuration of a relay of unit.
func DefaultConfig(unit tradeunit.UnitID) Config {
	host, _ := os.Hostname()
	return Config{Unit: unit, Lease: "events", Holder: fmt.Sprintf("%s:%d", host, os.Getpid()),
		LeaseTTL: 5 * time.Second, Batch: 500, Idle: 20 * time.Millisecond, Retry: 250 * time.Millisecond,
		GapSettle: 200 * time.Millisecond}
}

// Validate reports a bad setting; it changes nothing.
func (c Config) Validate() error {
	var errs []error
	if c.Unit < 1 || c.Unit > tradeunit.MaxUnitID {
		errs = append(errs, fmt.Errorf("relay: unit must be 1..%d, got %d", tradeunit.MaxUnitID, c.Unit))
	}
	if c.Lease == "" || c.Holder == "" {
		errs = append(errs, errors.New("relay: lease and holder names must not be empty"))
	}
	if c.LeaseTTL < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("relay: lease TTL must be at least 100ms, got %v", c.LeaseTTL))
	}
	if c.Batch < 1 || c.Batch > 10000 {
		errs = append(errs, fmt.Errorf("relay: batch must be 1..10000, got %d", c.Batch))
	}
	if c.Idle <= 0 || c.Retry <= 0 {
		errs = append(errs, errors.New("relay: idle and retry must be positive"))
	}
	// MySQL refreshes its view of open transactions only after 100 ms
	// without a read: asking more often would keep it stale for ever.
	if c.GapSettle < 150*time.Millisecond {
		errs = append(errs, fmt.Errorf("relay: gap settle must be at least 150ms, got %v", c.GapSettle))
	}
	return errors.Join(errs...)
}

// Relay publishes one unit's outbox. Run it with Run.
type Relay struct {
	cfg     Config
	storage tradeunit.Storage
	pub     Publisher
	log     *slog.Logger
	metrics *Metrics
	now     func() time.Time

	// Set while it holds the lease on store.
	store     tradeunit.Store
	outbox    tradeunit.Outbox
	track     *tracker
	saved     int64 // the cursor as stored
	renewedAt time.Time
	polledAt  time.Time // when it last asked whether gaps' writers ended
	backlogAt time.Time // when the backlog was last measured
}

// New returns a relay of cfg.Unit's outbox in storage, publishing to pub.
// metrics may be nil.
func New(cfg Config, storage tradeunit.Storage, pub Publisher, log *slog.Logger, metrics *Metrics) (*Relay, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	return &Relay{cfg: cfg, storage: storage, pub: pub, log: log, metrics: metrics, now: time.Now}, nil
}

// Run publishes until ctx ends, then gives the lease up.
func (r *Relay) Run(ctx context.Context) error {
	defer r.release()
	for {
		wait, err := r.step(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			r.metrics.failures.Inc()
			r.log.Warn("relay step failed", "unit", r.cfg.Unit, "err", err)
			wait = r.cfg.Retry
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// step holds the lease, reads once and publishes what it read; it returns
// how long to wait before the next step.
func (r *Relay) step(ctx context.Context) (time.Duration, error) {
	if err := r.lead(ctx); err != nil {
		if tradeunit.IsCode(err, tradeunit.CodeLeaseHeld) {
			r.metrics.leader.Set(0)
			return r.cfg.Retry, nil
		}
		return 0, err
	}
	if err := r.askWriters(ctx); err != nil {
		return 0, err
	}
	events, err := r.outbox.ReadOutbox(ctx, r.track.read, r.cfg.Batch, r.track.ranges())
	if err != nil {
		return 0, err
	}
	// A snapshot to undo to if publishing fails: the events will be read again.
	before := *r.track
	before.gaps = append([]gap(nil), r.track.gaps...)
	fresh := r.track.observe(events, r.now())
	if err := r.publish(ctx, fresh); err != nil {
		*r.track = before
		return 0, err
	}
	if err := r.save(ctx); err != nil {
		return 0, err
	}
	r.report(ctx, fresh)
	if len(events) >= r.cfg.Batch {
		return 0, nil
	}
	return r.cfg.Idle, nil
}

// lead makes sure the relay holds the lease on the unit's current primary,
// renewing it when a third of it is gone; on a new primary, or on a lease
// taken back, it starts from the stored cursor.
func (r *Relay) lead(ctx context.Context) error {
	store, err := r.storage.Primary()
	if err != nil {
		return err
	}
	now := r.now()
	if store == r.store && now.Sub(r.renewedAt) < r.cfg.LeaseTTL/3 {
		return nil
	}
	outbox, ok := store.(tradeunit.Outbox)
	if !ok {
		return fmt.Errorf("relay: unit %d's storage %T has no outbox reader", r.cfg.Unit, store)
	}
	cursor, err := outbox.AcquireRelay(ctx, r.cfg.Lease, r.cfg.Holder, r.cfg.LeaseTTL, now)
	if err != nil {
		r.store = nil
		return err
	}
	r.renewedAt = now
	if store != r.store {
		r.log.Info("relay leads", "unit", r.cfg.Unit, "holder", r.cfg.Holder, "cursor", cursor)
		r.store, r.outbox, r.track, r.saved = store, outbox, newTracker(cursor), cursor
		r.metrics.leader.Set(1)
	}
	return nil
}

// askWriters learns, for each gap old enough, which transactions may still
// fill it, and whether those of earlier gaps have all ended. It asks the
// latter at most every GapSettle, not at every step: MySQL answers from a
// copy of INNODB_TRX that a read refreshes only when the copy went 100 ms
// unread, so a relay asking every few milliseconds would keep reading the
// copy that still lists a writer long gone, and a rolled-back gap would
// hold its cursor back for ever.
func (r *Relay) askWriters(ctx context.Context) error {
	now := r.now()
	due := now.Sub(r.polledAt) >= r.cfg.GapSettle
	polled := false
	// One OpenWriters for every gap old enough, since the newest of them
	// was seen: a transaction open when an older gap was seen either is
	// still open then (and listed) or has ended, which is all a gap needs.
	var since time.Time
	for _, g := range r.track.gaps {
		if !g.asked && now.Sub(g.seen) >= r.cfg.GapSettle && g.seen.After(since) {
			since = g.seen
		}
	}
	var fresh tradeunit.Writers
	if !since.IsZero() {
		w, err := r.outbox.OpenWriters(ctx, since)
		if err != nil {
			return err
		}
		fresh = w
	}
	for i := range r.track.gaps {
		g := &r.track.gaps[i]
		switch {
		case !g.asked && !since.IsZero() && !g.seen.After(since):
			g.writers, g.asked = fresh, true
			// OpenWriters proved its copy fresh: ask of it at once.
			ended, err := r.outbox.WritersEnded(ctx, g.writers)
			if err != nil {
				return err
			}
			g.ended, polled = ended, true
		case g.asked && !g.ended && due:
			ended, err := r.outbox.WritersEnded(ctx, g.writers)
			if err != nil {
				return err
			}
			g.ended, polled = ended, true
		}
	}
	if polled {
		r.polledAt = r.now()
	}
	return nil
}

// publish sends events as the bus's OrderEvents; health checks' probe
// orders stay in the unit.
func (r *Relay) publish(ctx context.Context, events []tradeunit.Event) error {
	out := make([]tradeunit.OrderEvent, 0, len(events))
	for _, e := range events {
		oe, err := r.orderEvent(ctx, e)
		if err != nil {
			return err
		}
		if oe.Order.Mchid == tradeunit.ProbeMchid {
			continue
		}
		out = append(out, oe)
	}
	if len(out) == 0 {
		return nil
	}
	if err := r.pub.Publish(ctx, out); err != nil {
		return fmt.Errorf("relay: publish %d events of unit %d: %w", len(out), r.cfg.Unit, err)
	}
	r.metrics.published.Add(float64(len(out)))
	return nil
}

// orderEvent decodes an outbox row. A row written before events carried the
// order's snapshot gets the order as it stands now: its version keeps the
// consumers from taking it for a newer change than it is.
func (r *Relay) orderEvent(ctx context.Context, e tradeunit.Event) (tradeunit.OrderEvent, error) {
	oe, err := e.OrderEvent(r.cfg.Unit)
	if err == nil {
		return oe, nil
	}
	if !errors.Is(err, tradeunit.ErrNoSnapshot) {
		return oe, err
	}
	o, err := r.store.Order(ctx, e.OrderNo)
	if err != nil {
		return oe, fmt.Errorf("relay: event %d of an order without a snapshot: %w", e.ID, err)
	}
	oe = tradeunit.OrderEvent{Schema: tradeunit.EventSchema, ID: tradeunit.EventID(r.cfg.Unit, e.ID), Unit: r.cfg.Unit,
		Seq: e.ID, Type: e.Type, Time: e.Time, Order: tradeunit.NewEventOrder(o, o.Version)}
	return oe, nil
}

// save stores the cursor if it moved; a lease lost on the way stops this
// relay's leadership.
func (r *Relay) save(ctx context.Context) error {
	if r.track.cursor <= r.saved {
		return nil
	}
	err := r.outbox.SaveRelayCursor(ctx, r.cfg.Lease, r.cfg.Holder, r.track.cursor, r.now())
	if err != nil {
		if tradeunit.IsCode(err, tradeunit.CodeLeaseHeld) {
			r.log.Warn("relay lost its lease", "unit", r.cfg.Unit, "holder", r.cfg.Holder)
			r.store = nil
			r.metrics.leader.Set(0)
		}
		return err
	}
	r.saved = r.track.cursor
	return nil
}

// report updates the lag and backlog gauges after a step.
func (r *Relay) report(ctx context.Context, published []tradeunit.Event) {
	m := r.metrics
	m.cursor.Set(float64(r.track.cursor))
	m.gaps.Set(float64(r.track.open()))
	if at := r.track.oldest(); !at.IsZero() {
		m.oldestGap.Set(r.now().Sub(at).Seconds())
	} else {
		m.oldestGap.Set(0)
	}
	// The backlog costs a query: asked for at most twice a second.
	if now := r.now(); now.Sub(r.backlogAt) >= 500*time.Millisecond {
		r.backlogAt = now
		if last, err := r.outbox.LastEventID(ctx); err == nil {
			m.backlog.Set(float64(max(last-r.track.read, 0)))
			if last <= r.track.read {
				m.lag.Set(0)
			}
		}
	}
	if n := len(published); n > 0 {
		m.lag.Set(max(r.now().Sub(published[n-1].Time).Seconds(), 0))
	}
}

// release gives the lease up so that another relay takes over at once.
func (r *Relay) release() {
	if r.outbox == nil || r.store == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := r.outbox.ReleaseRelay(ctx, r.cfg.Lease, r.cfg.Holder); err != nil {
		r.log.Warn("relay could not release its lease", "unit", r.cfg.Unit, "err", err)
	}
	r.metrics.leader.Set(0)
}
