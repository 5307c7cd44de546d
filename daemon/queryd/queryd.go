// Package queryd is the query store's consumer program: tradeunit query
// apply, wired once. Its Main follows the event bus with a durable consumer
// and applies every order event to the query store (package query), the
// non-real-time copy of orders and refunds that merchants' listings,
// statistics and bills are served from. It never touches the live path: a
// stopped bus or query store only makes the copy older, and it catches up
// when they return.
package queryd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"
	"tradeunit/pki"

	"github.com/prometheus/client_golang/prometheus"

	"tradeunit"
	"tradeunit/daemon"
	"tradeunit/eventbus"
	"tradeunit/query"
)

// Config is the consumer's configuration. Start from DefaultConfig.
type Config struct {
	// Store is the query store: sqlite:PATH or postgres://USER@HOST:PORT/DB.
	Store string
	Query query.Config
	Bus   eventbus.Config
	// Durable names the bus consumer: consumers of one name share the
	// stream's position.
	Durable string
	// Batch is the most events applied in one transaction.
	Batch int
	// OpenTimeout is how long Run waits for a query store that does not
	// answer yet.
	OpenTimeout     time.Duration
	Metrics         string // serve GET /metrics here; "" for none
	MetricsAddrFile string
	Log             daemon.LogConfig
	// TLS names the certificate, key, CA and revocation list of every
	// internal connection (mutual TLS); none: plaintext.
	TLS pki.Files
}

// DefaultConfig returns the configuration tradeunit query apply starts with.
func DefaultConfig() Config {
	return Config{Query: query.DefaultConfig(), Bus: eventbus.DefaultConfig(), Durable: "query-store", Batch: 256, OpenTimeout: 30 * time.Second,
		Log: daemon.DefaultLogConfig()}
}

// Flags binds the configuration to flags of fs; each flag's default is the
// field's current value, so no default is written twice.
func (c *Config) Flags(fs *flag.FlagSet) {
	fs.StringVar(&c.Store, "store", c.Store, "the query store: sqlite:PATH or postgres://USER@HOST:PORT/DB (required)")
	fs.StringVar(&c.Durable, "durable", c.Durable, "the bus consumer's name: consumers of one name share the stream's position")
	fs.IntVar(&c.Batch, "batch", c.Batch, "most events applied in one transaction")
	fs.DurationVar(&c.OpenTimeout, "open-timeout", c.OpenTimeout, "how long to wait at start for a query store that does not answer yet")
	c.Bus.Flags(fs, "nats-")
	fs.StringVar(&c.Metrics, "metrics", c.Metrics, "serve Prometheus metrics (GET /metrics) on this address; off if empty")
	fs.StringVar(&c.MetricsAddrFile, "metrics-addr-file", c.MetricsAddrFile, "write the bound metrics address to this file (for port 0)")
	c.Log.Flags(fs)
	c.TLS.Flags(fs)
}

// Validate reports a bad setting; it changes nothing.
func (c Config) Validate() error {
	var errs []error
	if c.Store == "" {
		errs = append(errs, errors.New("--store is required"))
	}
	if c.Durable == "" {
		errs = append(errs, errors.New("--durable must not be empty"))
	}
	if c.OpenTimeout < 0 {
		errs = append(errs, fmt.Errorf("--open-timeout must not be negative, got %v", c.OpenTimeout))
	}
	if c.Batch < 1 || c.Batch > 10000 {
		errs = append(errs, fmt.Errorf("--batch must be 1..10000, got %d", c.Batch))
	}
	return errors.Join(append(errs, c.Query.Validate(), c.Bus.Validate(), c.Log.Validate(), c.TLS.Validate())...)
}

// Args returns the command-line flags of tradeunit query apply with this
// configuration.
func (c Config) Args() []string {
	return append([]string{"query"}, daemon.Args("apply", DefaultConfig(), c)...)
}

// Main is a running consumer.
type Main struct {
	Config Config
	daemon.Common
	// Store is the query store, set by Run.
	Store *query.Store

	metrics *daemon.HTTPServer
	work    *daemon.Background
}

// NewMain returns a Main with the default configuration.
func NewMain() *Main { return &Main{Config: DefaultConfig()} }

// ParseFlags parses args into m.Config with the flags of fs, and validates it.
func (m *Main) ParseFlags(fs *flag.FlagSet, args []string) error {
	return daemon.ParseFlags(fs, args, m.Config.Flags, func() error { return m.Config.Validate() })
}

// Run opens the query store and the bus and starts applying; it returns
// once the consumer runs.
func (m *Main) Run(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	c := m.Config
	if err := c.Validate(); err != nil {
		return err
	}
	if err := m.Start(c.Log, c.TLS); err != nil {
		return err
	}
	if m.Store, err = m.openStore(ctx); err != nil {
		return err
	}
	m.Closers.Add(m.Store.Close)
	busCfg := c.Bus
	if m.Keys != nil {
		busCfg.TLS = m.Keys.ClientTLS()
	}
	bus, err := eventbus.Open(ctx, busCfg, m.Logger)
	if err != nil {
		return err
	}
	m.Closers.Add(bus.Close)
	if err := bus.RegisterMetrics(m.Registry); err != nil {
		return err
	}
	m.work = daemon.NewBackground()
	bg := m.work.Context()
	applied := prometheus.NewCounter(prometheus.CounterOpts{Name: "tradeunit_query_events_applied_total",
		Help: "Order events applied to the query store (a redelivered one counts again)."})
	m.Registry.MustRegister(applied, m.lagGauge(bus))
	if m.metrics, err = daemon.ServeMetrics(c.Metrics, c.MetricsAddrFile, m.Registry, m.Keys, m.Logger); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	apply := func(ctx context.Context, events []tradeunit.OrderEvent) error {
		if err := m.Store.Apply(ctx, events); err != nil {
			m.Logger.Warn("query store: apply failed; the events come again", "events", len(events), "err", err)
			return err
		}
		applied.Add(float64(len(events)))
		return nil
	}
	caughtUp := func(at time.Time) {
		if err := m.Store.MarkCaughtUp(bg, at); err != nil {
			m.Logger.Warn("query store: cannot record being caught up", "err", err)
		}
	}
	m.work.Go(func(ctx context.Context) error { return bus.Consume(ctx, c.Durable, c.Batch, apply, caughtUp) })
	m.Logger.Info("query store consumer running", "durable", c.Durable, "bus", c.Bus.URL)
	return nil
}

// openStore opens the query store, waiting up to OpenTimeout for one that
// cannot answer yet (started at the same time, restarting): programs of a
// deployment start in any order.
func (m *Main) openStore(ctx context.Context) (*query.Store, error) {
	c := m.Config
	deadline := time.Now().Add(c.OpenTimeout)
	for {
		s, err := query.Open(ctx, c.Store, c.Query)
		if err == nil || !tradeunit.IsCode(err, tradeunit.CodeQueryUnavailable) || time.Now().After(deadline) {
			return s, err
		}
		m.Logger.Warn("query store not answering yet; retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// lagGauge reports, at each scrape, how far the query store is behind: the
// time since the instant it is known complete up to, and the events the
// bus still holds for it.
func (m *Main) lagGauge(bus *eventbus.Bus) prometheus.Collector {
	return &lagCollector{m: m, bus: bus,
		lag:     prometheus.NewDesc("tradeunit_query_lag_seconds", "Time since the instant the query store is known complete up to (-1: unknown, the store does not answer).", nil, nil),
		pending: prometheus.NewDesc("tradeunit_query_pending_events", "Events on the bus not yet applied to the query store (-1: unknown, the bus does not answer).", nil, nil)}
}

type lagCollector struct {
	m            *Main
	bus          *eventbus.Bus
	lag, pending *prometheus.Desc
}

func (l *lagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- l.lag; ch <- l.pending }

func (l *lagCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	lag := -1.0
	if at, err := l.m.Store.AsOf(ctx); err == nil && !at.IsZero() {
		lag = max(time.Since(at).Seconds(), 0)
	}
	ch <- prometheus.MustNewConstMetric(l.lag, prometheus.GaugeValue, lag)
	pending := -1.0
	if n, err := l.bus.Pending(ctx, l.m.Config.Durable); err == nil {
		pending = float64(n)
	}
	ch <- prometheus.MustNewConstMetric(l.pending, prometheus.GaugeValue, pending)
}

// MetricsURL is where the consumer serves its metrics ("" for nowhere).
func (m *Main) MetricsURL() string {
	if m.metrics == nil {
		return ""
	}
	return daemon.InternalURL(m.metrics.Addr, m.Keys) + "/metrics"
}

// Wait blocks until ctx ends, or the consumer stops by itself (its error).
func (m *Main) Wait(ctx context.Context) error { return m.work.Wait(ctx) }

// Close stops consuming, then closes the bus and the query store.
func (m *Main) Close() error {
	if m.work != nil {
		m.work.Stop()
	}
	var errs []error
	if m.metrics != nil {
		errs = append(errs, m.metrics.Close())
		m.metrics = nil
	}
	return errors.Join(append(errs, m.Closers.Close())...)
}
