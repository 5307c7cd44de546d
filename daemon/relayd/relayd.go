// Package relayd is the outbox relay program: tradeunit relay, one relay of
// one unit, wired once. Its Main opens the unit's storage (one DSN, or the
// primary the storage topology names, followed across failovers) and the
// event bus, and publishes the unit's outbox (package relay) until stopped.
// Several may run for a unit: a lease in the unit's storage lets one
// publish, and another takes over within the lease's TTL when it dies.
package relayd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"tradeunit/pki"

	"tradeunit/daemon"
	"tradeunit/eventbus"
	"tradeunit/relay"
	"tradeunit/secrets"
	"tradeunit/store/replicated"
)

// Config is the relay program's configuration. Start from DefaultConfig.
type Config struct {
	daemon.UnitStorage
	Relay relay.Config
	Bus   eventbus.Config
	// Secrets is the secrets file the storage passwords come from (with
	// the TRADEUNIT_PASSWORD_* environment variables).
	Secrets         string
	Metrics         string // serve GET /metrics here; "" for none
	MetricsAddrFile string
	Log             daemon.LogConfig
	// TLS names the certificate, key, CA and revocation list of every
	// internal connection (mutual TLS); none: plaintext.
	TLS pki.Files
}

// DefaultConfig returns the configuration tradeunit relay starts with.
func DefaultConfig() Config {
	return Config{UnitStorage: daemon.UnitStorage{Storage: replicated.DefaultConfig()}, Relay: relay.DefaultConfig(0),
		Bus: eventbus.DefaultConfig(), Log: daemon.DefaultLogConfig()}
}

// Flags binds the configuration to flags of fs; each flag's default is the
// field's current value, so no default is written twice.
func (c *Config) Flags(fs *flag.FlagSet) {
	r := &c.Relay
	daemon.UnitVar(fs, &r.Unit, "unit", "unit number, 1..99999 (required)")
	c.UnitStorage.Flags(fs)
	fs.StringVar(&c.Secrets, "secrets", c.Secrets, "secrets file with the storage passwords (mode 600); the TRADEUNIT_PASSWORD_* environment variables are read too")
	fs.StringVar(&r.Lease, "lease", r.Lease, "the lease and cursor's name in the unit's storage: relays with one name share a cursor")
	fs.StringVar(&r.Holder, "holder", r.Holder, "this relay's name in the lease")
	fs.DurationVar(&r.LeaseTTL, "lease-ttl", r.LeaseTTL, "how long the lease lasts unrenewed: how soon another relay takes over from a dead one")
	fs.IntVar(&r.Batch, "batch", r.Batch, "most events read and published at once")
	fs.DurationVar(&r.Idle, "idle", r.Idle, "wait after a read that found nothing new")
	fs.DurationVar(&r.GapSettle, "gap-settle", r.GapSettle, "age of a gap in the event numbers before the relay asks which transactions may still fill it")
	c.Bus.Flags(fs, "nats-")
	fs.StringVar(&c.Metrics, "metrics", c.Metrics, "serve Prometheus metrics (GET /metrics) on this address; off if empty")
	fs.StringVar(&c.MetricsAddrFile, "metrics-addr-file", c.MetricsAddrFile, "write the bound metrics address to this file (for port 0)")
	c.Log.Flags(fs)
	c.TLS.Flags(fs)
}

// Validate reports a bad setting; it changes nothing.
func (c Config) Validate() error {
	return errors.Join(c.UnitStorage.Validate(), c.Relay.Validate(), c.Bus.Validate(), c.Log.Validate(), c.TLS.Validate())
}

// Args returns the command-line flags of tradeunit relay with this
// configuration: how the local cluster starts relays as child processes.
func (c Config) Args() []string { return daemon.Args("relay", DefaultConfig(), c) }

// Main is a running relay.
type Main struct {
	Config Config
	daemon.Common

	metrics *daemon.HTTPServer
	work    *daemon.Background
}

// NewMain returns a Main with the default configuration.
func NewMain() *Main { return &Main{Config: DefaultConfig()} }

// ParseFlags parses args into m.Config with the flags of fs, and validates it.
func (m *Main) ParseFlags(fs *flag.FlagSet, args []string) error {
	return daemon.ParseFlags(fs, args, m.Config.Flags, func() error { return m.Config.Validate() })
}

// Run opens the storage and the bus and starts publishing; it returns once
// the relay runs (it may still be waiting for the lease).
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
	passwords, err := secrets.ForProgram(c.Secrets)
	if err != nil {
		return err
	}
	m.work = daemon.NewBackground()
	bg := m.work.Context()
	opened, err := c.UnitStorage.Open(ctx, bg, c.Relay.Unit, passwords, m.Keys, m.Logger, nil)
	if err != nil {
		return err
	}
	m.Closers.Add(opened.Close)
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
	r, err := relay.New(c.Relay, opened.Storage, bus, m.Logger, relay.NewMetrics(m.Registry))
	if err != nil {
		return err
	}
	if m.metrics, err = daemon.ServeMetrics(c.Metrics, c.MetricsAddrFile, m.Registry, m.Keys, m.Logger); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	m.work.Go(r.Run)
	m.Logger.Info("relay running", "unit", c.Relay.Unit, "holder", c.Relay.Holder, "bus", c.Bus.URL)
	return nil
}

// Wait blocks until ctx ends.
func (m *Main) Wait(ctx context.Context) error { return m.work.Wait(ctx) }

// Close stops publishing (giving the lease up), then closes the bus and
// the storage.
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
