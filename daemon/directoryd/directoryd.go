// Package directoryd is the directory shard program: tradeunit directory,
// one service replica of one shard of the merchant-key directory, wired
// once. Its Main opens the shard's storage (one DSN, or the primary the
// storage topology names, followed across failovers), batches concurrent
// writes into one transaction (group commit), serves the shard's gRPC API
// with the standard health service and, if asked, Prometheus metrics, and
// runs the reconciler that closes the orphans of abandoned attempts.
package directoryd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"tradeunit/pki"

	"tradeunit"
	"tradeunit/batch"
	"tradeunit/daemon"
	"tradeunit/directory"
	"tradeunit/dsn"
	"tradeunit/routing"
	"tradeunit/rpc"
	"tradeunit/secrets"
	"tradeunit/store/dirstore"
	"tradeunit/store/replicated"
)

// Config is a directory shard service's configuration. Start from
// DefaultConfig.
type Config struct {
	Shard routing.ShardID
	// Routes is the routing table: the units the reconciler calls and,
	// unless DB is set, the storage topology whose shard entry is followed.
	Routes string
	// DB is the shard's one storage, instead of the topology's.
	DB dsn.DSN
	// GRPCConfig is where it listens, serves metrics and finds passwords.
	daemon.GRPCConfig
	// Batch groups concurrent puts into one storage transaction.
	Batch     batch.Config
	Reconcile directory.ReconcilerConfig
	Storage   replicated.Config
	Log       daemon.LogConfig
	// TLS names the certificate, key, CA and revocation list of every
	// internal connection (mutual TLS); none: plaintext.
	TLS pki.Files
}

// DefaultConfig returns the configuration tradeunit directory starts with.
func DefaultConfig() Config {
	return Config{GRPCConfig: daemon.DefaultGRPCConfig("127.0.0.1:9201"), Batch: batch.DefaultConfig(), Reconcile: directory.DefaultReconcilerConfig(),
		Storage: replicated.DefaultConfig(), Log: daemon.DefaultLogConfig()}
}

// Flags binds the configuration to flags of fs; each flag's default is the
// field's current value.
func (c *Config) Flags(fs *flag.FlagSet) {
	daemon.UnitVar(fs, (*tradeunit.UnitID)(&c.Shard), "shard", "directory shard number, 1..99999 (required)")
	fs.StringVar(&c.Routes, "routes", c.Routes, "routing table (a file, or etcd://HOST:PORT/PREFIX): the units the reconciler calls and, "+
		"without --db, the shard's storage in its storage topology, followed across failovers (required)")
	fs.TextVar(&c.DB, "db", c.DB, "instead of the topology: the shard's storage DSN, sqlite:PATH or mysql:USER@tcp(HOST:PORT)/DB (no password: see --secrets)")
	daemon.BatchFlags(fs, &c.Batch, "", "puts", "storage transaction")
	r := &c.Reconcile
	fs.DurationVar(&r.Every, "reconcile-every", r.Every, "time between two passes of the reconciler over the abandoned attempts")
	fs.DurationVar(&r.StaleAfter, "reconcile-stale", r.StaleAfter, "a pending entry this old belongs to a create that gave up (the proxies' unit timeout, twice)")
	fs.DurationVar(&c.Storage.CheckEvery, "storage-check", c.Storage.CheckEvery, "how often the primary's health (read-only, semi-sync acknowledgement) is checked")
	fs.DurationVar(&c.Storage.MaxAckWait, "max-ack-wait", c.Storage.MaxAckWait, "a commit waiting this long for a replica's acknowledgement makes the shard refuse changes")
	c.GRPCConfig.Flags(fs)
	c.Log.Flags(fs)
	c.TLS.Flags(fs)
}

// Validate reports a bad setting; it changes nothing.
func (c Config) Validate() error {
	var errs []error
	if err := tradeunit.UnitID(c.Shard).Validate(); err != nil {
		errs = append(errs, fmt.Errorf("--shard: %w", err))
	}
	if c.Routes == "" {
		errs = append(errs, errors.New("--routes is required"))
	}
	return errors.Join(append(errs, c.Batch.Validate(), c.Reconcile.Validate(), c.Storage.Validate(), c.GRPCConfig.Validate(), c.Log.Validate(), c.TLS.Validate())...)
}

// Args returns the command-line flags of tradeunit directory that start a
// shard service with this configuration.
func (c Config) Args() []string { return daemon.Args("directory", DefaultConfig(), c) }

// Main is a running directory shard service.
type Main struct {
	Config Config
	daemon.Common
	// Dialer reaches the units for the reconciler; nil: gRPC.
	Dialer tradeunit.LogicDialer

	// Set by Run.
	Store      tradeunit.DirectoryStore // what the service serves: the batched shard storage
	Reconciler *directory.Reconciler
	Addr       string
	server     *daemon.GRPCServer
	metrics    *daemon.HTTPServer
	stop       context.CancelFunc
}

// NewMain returns a Main with the default configuration.
func NewMain() *Main { return &Main{Config: DefaultConfig()} }

// ParseFlags parses args into m.Config with the flags of fs, and validates
// it.
func (m *Main) ParseFlags(fs *flag.FlagSet, args []string) error {
	return daemon.ParseFlags(fs, args, m.Config.Flags, func() error { return m.Config.Validate() })
}

// Name is the shard's name in logs and errors.
func (c Config) Name() string { return "directory shard " + strconv.FormatUint(uint64(c.Shard), 10) }

// Run opens the storage and starts serving and reconciling; it returns once
// the gRPC server listens (following the topology, NOT_SERVING until the
// primary is open and writable).
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
	m.Logger = m.Logger.With("shard", c.Shard)
	passwords, err := secrets.ForProgram(c.Secrets)
	if err != nil {
		return err
	}
	bg, stop := context.WithCancel(context.Background())
	m.stop = stop
	routes, err := m.Routes(ctx, c.Routes, nil)
	if err != nil {
		return err
	}
	relay := daemon.NewHealthRelay(c.DB != dsn.DSN{}, rpc.DirectoryServiceName)
	var store tradeunit.DirectoryStore
	if c.DB != (dsn.DSN{}) {
		s, err := dirstore.Open(ctx, c.DB, passwords)
		if err != nil {
			return err
		}
		m.Closers.Add(s.Close)
		store = s
	} else {
		top, err := routing.OpenTopology(ctx, c.Routes, daemon.RoutingOptions(m.Keys, m.Logger))
		if err != nil {
			return err
		}
		m.Closers.Add(top.Close)
		watch := daemon.WatchStorage(bg, top, func(t *routing.Topology) (routing.Storage, bool, bool) {
			s, ok := t.Shard(c.Shard)
			if !ok {
				return routing.Storage{}, false, false
			}
			return s.Storage, false, true
		})
		s, err := replicated.OpenShard(c.Storage, c.Name(), replicated.Deps{Topology: watch, Passwords: passwords,
			OnHealth: relay.Set, Logger: m.Logger})
		if err != nil {
			return err
		}
		m.Closers.Add(s.Close)
		store = s
	}
	batched, err := dirstore.NewBatched(store, c.Batch)
	if err != nil {
		return err
	}
	m.Closers.Add(batched.Close) // closed before the storage: Closers run last first
	m.Store = batched
	daemon.RegisterBatchMetrics(m.Registry, "directory_put", "shard's puts", batched.Stats)

	if m.Dialer == nil {
		m.Dialer = rpc.NewPool(rpc.WithKeys(m.Keys)...)
		m.Closers.Add(m.Dialer.Close)
	}
	reconcile := c.Reconcile
	reconcile.Shard = c.Shard // it leaves alone the buckets of other shards, and those being moved
	if m.Reconciler, err = directory.NewReconciler(reconcile, batched, routes, m.Dialer, m.Registry, m.Logger); err != nil {
		return err
	}
	go m.Reconciler.Run(bg)

	if m.metrics, err = daemon.ServeMetrics(c.Metrics, c.MetricsAddrFile, m.Registry, m.Keys, m.Logger); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	rpcMetrics := rpc.NewServerMetrics(m.Registry)
	// Served, the shard refuses keys the table gives to another shard or
	// freezes: a caller with a stale table cannot touch a moved entry.
	server, health := rpc.NewDirectoryServer(directory.NewOwned(batched, c.Shard, routes), m.Logger,
		append(rpc.ServerKeys(m.Keys), rpcMetrics.Interceptor())...)
	relay.Attach(health)
	if m.server, err = daemon.ServeGRPC(c.Listen, c.AddrFile, server, health, c.ShutdownTimeout); err != nil {
		return err
	}
	m.Addr = m.server.Addr
	m.Logger.Info("directory shard serving", "addr", m.Addr)
	return nil
}

// Wait blocks until ctx ends (nil) or the server fails (its error).
func (m *Main) Wait(ctx context.Context) error { return daemon.Wait(ctx, m.server.Failed()) }

// Close stops serving (calls in flight finish: every acknowledged put is
// committed), stops the reconciler, then closes the storage.
func (m *Main) Close() error {
	if m.server != nil {
		m.server.Close()
		m.server = nil
		m.Logger.Info("directory shard stopped")
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
