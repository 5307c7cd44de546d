// Package unitd is the logic-service program: tradeunit unit, one replica
// of one transaction unit, wired once. Its Main opens the unit's storage
// (one DSN, or the primary and replicas the storage topology names, followed
// across failovers), binds it to the unit, and serves the unit's gRPC API,
// the standard gRPC health service and, if asked, Prometheus metrics; a
// janitor deletes the health checker's old probe orders.
package unitd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"
	"tradeunit/pki"

	"github.com/prometheus/client_golang/prometheus"

	"tradeunit/daemon"
	"tradeunit/rpc"
	"tradeunit/secrets"
	"tradeunit/store/replicated"
	"tradeunit/unit"
)

// Config is the logic service's configuration. Start from DefaultConfig.
type Config struct {
	// UnitStorage is the unit's one storage (DB); or, instead, Routes
	// names the routing table whose storage topology the service follows:
	// changes and real-time reads on the primary, eventual reads on the
	// replicas.
	daemon.UnitStorage
	// GRPCConfig is where it listens, serves metrics and finds passwords.
	daemon.GRPCConfig
	Service unit.Config // its Unit is the unit's number
	Janitor unit.JanitorConfig
	Log     daemon.LogConfig
	// TLS names the certificate, key, CA and revocation list of every
	// internal connection (mutual TLS); none: plaintext.
	TLS pki.Files
}

// DefaultConfig returns the configuration tradeunit unit starts with.
func DefaultConfig() Config {
	return Config{GRPCConfig: daemon.DefaultGRPCConfig("127.0.0.1:9101"), Service: unit.DefaultConfig(0), Janitor: unit.DefaultJanitorConfig(),
		UnitStorage: daemon.UnitStorage{Storage: replicated.DefaultConfig()}, Log: daemon.DefaultLogConfig()}
}

// Flags binds the configuration to flags of fs; each flag's default is the
// field's current value, so no default is written twice.
func (c *Config) Flags(fs *flag.FlagSet) {
	daemon.UnitVar(fs, &c.Service.Unit, "unit", "unit number, 1..99999 (required)")
	fs.Int64Var(&c.Service.SequenceBlock, "sequence-block", c.Service.SequenceBlock, "sequence numbers reserved per storage round trip")
	daemon.BatchFlags(fs, &c.Service.Batch, "", "creates", "storage transaction")
	daemon.BatchFlags(fs, &c.Service.ChangeBatch, "change-", "pays and closes, or refunds,", "storage transaction")
	fs.DurationVar(&c.Service.Cold.UpdateWithin, "cold-update-within", c.Service.Cold.UpdateWithin,
		"once the unit is cold: pay or close only orders younger than this (0: none), others get ORDER_ARCHIVED")
	fs.DurationVar(&c.Service.Cold.RefundWindow, "refund-window", c.Service.Cold.RefundWindow,
		"refund an order only within this of its payment (0: no limit), later ones get REFUND_PERIOD_EXPIRED")
	fs.DurationVar(&c.Service.FreezeWait, "freeze-wait", c.Service.FreezeWait,
		"how long a change waits while the storage is frozen for its switch to cold storage")
	fs.DurationVar(&c.Janitor.Retention, "probe-retention", c.Janitor.Retention, "delete the health checker's probe orders older than this")
	fs.DurationVar(&c.Janitor.Every, "probe-janitor-every", c.Janitor.Every, "how often old probe orders are looked for")
	c.UnitStorage.Flags(fs)
	c.GRPCConfig.Flags(fs)
	c.Log.Flags(fs)
	c.TLS.Flags(fs)
}

// Validate reports a bad setting; it changes nothing.
func (c Config) Validate() error {
	return errors.Join(c.UnitStorage.Validate(), c.Service.Validate(), c.Janitor.Validate(), c.GRPCConfig.Validate(), c.Log.Validate(), c.TLS.Validate())
}

// Args returns the command-line flags of tradeunit unit that start a
// logic service with this configuration: how the local cluster starts its
// replicas as child processes of the one program that ships.
func (c Config) Args() []string {
	return daemon.Args("unit", DefaultConfig(), c)
}

// openWait bounds the wait for the storage's primary at start.
const openWait = 10 * time.Second

// Main is a running logic service.
type Main struct {
	Config Config
	// Common holds the logger (set it to override the configured one),
	// the metrics registry and what Close closes.
	daemon.Common

	// Set by Run.
	Service *unit.Service
	Addr    string // the gRPC address it serves on
	server  *daemon.GRPCServer
	relay   *daemon.HealthRelay
	metrics *daemon.HTTPServer
	stop    context.CancelFunc
}

// NewMain returns a Main with the default configuration.
func NewMain() *Main { return &Main{Config: DefaultConfig()} }

// ParseFlags parses args into m.Config with the flags of fs (which carries
// the command's usage), and validates it.
func (m *Main) ParseFlags(fs *flag.FlagSet, args []string) error {
	return daemon.ParseFlags(fs, args, m.Config.Flags, func() error { return m.Config.Validate() })
}

// Run opens the storage and starts serving; it returns once the gRPC server
// listens (with --routes, NOT_SERVING until the primary is open, writable
// and acknowledged).
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
	bg, stop := context.WithCancel(context.Background())
	m.stop = stop
	// With --routes, not serving until the primary is open, writable and
	// acknowledged.
	m.relay = daemon.NewHealthRelay(c.Routes == "", rpc.ServiceName)
	opened, err := c.UnitStorage.Open(ctx, bg, c.Service.Unit, passwords, m.Keys, m.Logger, m.relay.Set)
	if err != nil {
		return err
	}
	m.Closers.Add(opened.Close)
	// Announced (the address file) only once the storage has tried its
	// primary, so that its first calls are not answered "still opening";
	// a primary that cannot be opened leaves the service NOT_SERVING.
	wctx, cancel := context.WithTimeout(ctx, openWait)
	if err := opened.WaitOpen(wctx); err != nil {
		m.Logger.Warn("unit storage still opening its primary; serving anyway", "waited", openWait)
	}
	cancel()
	if m.Service, err = unit.NewWithStorage(c.Service, opened.Storage); err != nil {
		return err
	}
	m.Closers.Add(m.Service.Close)
	janitor := opened.ProbeDeleter

	rpcMetrics := rpc.NewServerMetrics(m.Registry)
	probesDeleted := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tradeunit_unit_probe_orders_deleted_total", Help: "Probe orders of the health checker deleted after their retention.",
	})
	m.Registry.MustRegister(probesDeleted)
	daemon.RegisterBatchMetrics(m.Registry, "unit_create", "unit's creates", m.Service.CreateStats)
	daemon.RegisterBatchMetrics(m.Registry, "unit_change", "unit's pays and closes", m.Service.ChangeStats)
	daemon.RegisterBatchMetrics(m.Registry, "unit_refund", "unit's refunds", m.Service.RefundStats)
	if m.metrics, err = daemon.ServeMetrics(c.Metrics, c.MetricsAddrFile, m.Registry, m.Keys, m.Logger); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	jcfg := c.Janitor
	jcfg.Deleted = func(n int) { probesDeleted.Add(float64(n)) }
	go unit.RunJanitor(bg, janitor, jcfg, m.Logger)

	// With keys, callers must present a certificate whose role may make
	// the call (rpc.ServerKeys); without, the port is plaintext.
	server, health := rpc.NewServer(m.Service, m.Logger, append(rpc.ServerKeys(m.Keys), rpcMetrics.Interceptor())...)
	m.relay.Attach(health)
	if m.server, err = daemon.ServeGRPC(c.Listen, c.AddrFile, server, health, c.ShutdownTimeout); err != nil {
		return err
	}
	m.Addr = m.server.Addr
	m.Logger.Info("unit serving", "unit", c.Service.Unit, "addr", m.Addr)
	return nil
}

// Wait blocks until ctx ends (nil) or the server fails (its error).
func (m *Main) Wait(ctx context.Context) error { return daemon.Wait(ctx, m.server.Failed()) }

// Close reports NOT_SERVING to gRPC health checks, then finishes the calls
// in flight: every acknowledged change is committed. New calls are refused
// at once, and the proxy moves them to the unit's other replicas. Then the
// storage closes.
func (m *Main) Close() error {
	if m.server != nil {
		m.server.Close()
		m.server = nil
		m.Logger.Info("unit stopped", "unit", m.Config.Service.Unit)
	}
	var errs []error
	if m.metrics != nil {
		errs = append(errs, m.metrics.Close())
		m.metrics = nil
	}
	if m.stop != nil {
		m.stop()
	}
	errs = append(errs, m.Closers.Close())
	return errors.Join(errs...)
}
