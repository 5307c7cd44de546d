// Package proxyd is the proxy program: tradeunit proxy, the proxy of
// tradeunit dev, of the benchmarks and of the tests, wired once. Its Main
// opens the routing table, loads the merchants, dials the units over gRPC,
// follows the health checker and serves the public API and its metrics over
// an HTTP server with bounded timeouts.
package proxyd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"tradeunit/pki"

	"tradeunit"
	"tradeunit/daemon"
	"tradeunit/proxy"
	"tradeunit/query"
	"tradeunit/routing"
	"tradeunit/rpc"
)

// Config is the proxy program's configuration. Start from DefaultConfig.
type Config struct {
	Listen    string // HTTP listen address of the API and /metrics
	AddrFile  string // write the bound address here once serving (for port 0)
	Routes    string // the routing table: a file, or etcd://HOST:PORT/PREFIX
	Merchants string // merchants file: {"merchants":[{"mchid","api_key"}]}
	// QueryStore is the non-real-time query store the listing, statistics
	// and bills are served from (sqlite:PATH or postgres://...); "" for
	// none. It is opened when first needed: the proxy serves without it.
	QueryStore string
	Query      query.Config
	Proxy      proxy.Config
	HTTP       daemon.HTTPConfig
	Log        daemon.LogConfig
	// TLS names the certificate, key, CA and revocation list of every
	// internal connection (mutual TLS); none: plaintext.
	TLS pki.Files
	// Metrics is the operators' port: /metrics and the CPU profiles
	// (/debug/pprof), which the public API does not serve; off if empty.
	Metrics         string
	MetricsAddrFile string // write its bound address here (for port 0)
}

// DefaultConfig returns the configuration tradeunit proxy starts with.
func DefaultConfig() Config {
	return Config{Listen: "127.0.0.1:8080", Query: query.DefaultConfig(), Proxy: proxy.DefaultConfig(), HTTP: daemon.DefaultHTTPConfig(), Log: daemon.DefaultLogConfig()}
}

// Flags binds the configuration to flags of fs; each flag's default is the
// field's current value, so no default is written twice.
func (c *Config) Flags(fs *flag.FlagSet) {
	fs.StringVar(&c.Listen, "listen", c.Listen, "HTTP listen address")
	fs.StringVar(&c.AddrFile, "addr-file", c.AddrFile, "write the bound address to this file once serving (for port 0)")
	fs.StringVar(&c.Routes, "routes", c.Routes, "routing table: a file, or etcd://HOST:PORT/PREFIX (required)")
	fs.StringVar(&c.Merchants, "merchants", c.Merchants, `merchants file: {"merchants":[{"mchid","api_key"}]} (required)`)
	fs.StringVar(&c.QueryStore, "query-store", c.QueryStore, "the query store the listing, statistics and bills are served from: sqlite:PATH or postgres://USER@HOST:PORT/DB; none if empty")
	fs.IntVar(&c.Proxy.MaxCreateAttempts, "create-attempts", c.Proxy.MaxCreateAttempts, "units one create may call before giving up")
	fs.DurationVar(&c.Proxy.UnitTimeout, "unit-timeout", c.Proxy.UnitTimeout, "timeout of one call to one logic-service replica")
	fs.DurationVar(&c.Proxy.ShardTimeout, "shard-timeout", c.Proxy.ShardTimeout, "timeout of one call to one directory shard replica")
	fs.StringVar(&c.Proxy.Health, "health", c.Proxy.Health, "health checker to follow, e.g. http://127.0.0.1:8081; without it the proxy relies on its own view of the units")
	fs.DurationVar(&c.Proxy.BalanceWindow, "balance-window", c.Proxy.BalanceWindow, "history of request counts that hot-spot balancing weighs")
	fs.IntVar(&c.Proxy.Passive.Failures, "suspect-after", c.Proxy.Passive.Failures, "consecutive failed calls after which this proxy holds a unit suspect")
	fs.DurationVar(&c.Proxy.Passive.Hold, "suspect-hold", c.Proxy.Passive.Hold, "how long a unit stays suspect after its last failed call")
	daemon.BatchFlags(fs, &c.Proxy.ShardBatch, "shard-", "directory puts", "call to their shard")
	fs.StringVar(&c.Proxy.Zone, "zone", c.Proxy.Zone, "zone (machine room) this proxy runs in: calls to a unit try its logic replicas in this zone first (logic_zones); empty: no preference")
	fs.BoolVar(&c.Proxy.AccessLog, "access-log", c.Proxy.AccessLog, "log one line per API request")
	fs.BoolVar(&c.Proxy.UnsafeWithoutDirectory, "unsafe-without-directory", c.Proxy.UnsafeWithoutDirectory,
		"benchmark baseline only: creates skip the key directory, losing one order per out_trade_no")
	fs.StringVar(&c.Metrics, "metrics", c.Metrics, "operators' port: metrics (GET /metrics) and CPU profiles (/debug/pprof) on this address; off if empty")
	fs.StringVar(&c.MetricsAddrFile, "metrics-addr-file", c.MetricsAddrFile, "write the bound operators' address to this file (for port 0)")
	c.HTTP.Flags(fs)
	c.Log.Flags(fs)
	c.TLS.Flags(fs)
}

// Args returns the command-line flags of tradeunit proxy that start the
// program with this configuration, as a child process.
func (c Config) Args() []string {
	return daemon.Args("proxy", DefaultConfig(), c)
}

// Validate reports a bad setting; it changes nothing.
func (c Config) Validate() error {
	return errors.Join(c.Query.Validate(), c.Proxy.Validate(), c.HTTP.Validate(), c.Log.Validate(), c.TLS.Validate())
}

// Main is a running proxy.
type Main struct {
	Config Config
	// Common holds the logger (set it to override the configured one),
	// the metrics registry and what Close closes.
	daemon.Common

	// In-process overrides, set before Run (the local cluster, tests); nil
	// means built from Config as tradeunit proxy does.
	Routes      routing.Source
	Credentials *proxy.Credentials
	Dialer      tradeunit.LogicDialer

	// Set by Run.
	Proxy   *proxy.Proxy
	server  *daemon.HTTPServer
	metrics *daemon.HTTPServer // the operators' port, nil without Config.Metrics
}

// NewMain returns a Main with the default configuration.
func NewMain() *Main { return &Main{Config: DefaultConfig()} }

// ParseFlags parses args into m.Config with the flags of fs (which carries
// the command's usage), and validates it.
func (m *Main) ParseFlags(fs *flag.FlagSet, args []string) error {
	return daemon.ParseFlags(fs, args, m.Config.Flags, func() error { return m.Config.Validate() })
}

// Run starts the proxy and returns once it serves.
func (m *Main) Run(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	if err := m.Config.Validate(); err != nil {
		return err
	}
	if err := m.Start(m.Config.Log, m.Config.TLS); err != nil {
		return err
	}
	if m.Routes, err = m.Common.Routes(ctx, m.Config.Routes, m.Routes); err != nil {
		return err
	}
	if m.Credentials == nil {
		if m.Config.Merchants == "" {
			return errors.New("no merchants: pass --merchants FILE")
		}
		if m.Credentials, err = proxy.LoadCredentials(m.Config.Merchants); err != nil {
			return err
		}
	}
	if m.Dialer == nil {
		m.Dialer = rpc.NewPool(rpc.WithKeys(m.Keys)...)
	}
	deps := proxy.Deps{Routes: m.Routes, Credentials: m.Credentials, Dialer: m.Dialer, Registry: m.Registry, Logger: m.Logger,
		HealthClient: daemon.InternalClient(m.Keys)}
	if m.Config.QueryStore != "" {
		lazy := query.NewLazy(m.Config.QueryStore, m.Config.Query)
		m.Closers.Add(lazy.Close)
		deps.Query = lazy
	}
	pcfg := m.Config.Proxy
	pcfg.MaxHeaderBytes = m.Config.HTTP.MaxHeaderBytes
	m.Proxy, err = proxy.New(pcfg, deps)
	if err != nil {
		return err
	}
	if m.Config.Proxy.UnsafeWithoutDirectory {
		m.Logger.Warn("running without the key directory (--unsafe-without-directory): a repeated create can make a second order; benchmark baselines only")
	}
	// The configured header limit is the proxy's to enforce, so that a
	// request over it gets the JSON error shape and a Request-ID; the
	// server's own limit, answered in plain text, is only a backstop
	// against headers far over it.
	hcfg := m.Config.HTTP
	hcfg.MaxHeaderBytes = 2*hcfg.MaxHeaderBytes + 4096
	if m.metrics, err = daemon.ServeMetrics(m.Config.Metrics, m.Config.MetricsAddrFile, m.Registry, m.Keys, m.Logger); err != nil {
		return err
	}
	m.server, err = daemon.ServeHTTP(m.Config.Listen, m.Config.AddrFile, m.Proxy.Handler(), hcfg, m.Logger)
	if err != nil {
		return fmt.Errorf("proxy listen: %w", err)
	}
	return nil
}

// URL returns the base URL the proxy serves on, e.g. http://127.0.0.1:8080.
func (m *Main) URL() string { return "http://" + m.server.Addr }

// Wait blocks until ctx ends (nil) or the server fails (its error).
func (m *Main) Wait(ctx context.Context) error { return daemon.Wait(ctx, m.server.Failed()) }

// Close stops the proxy: the HTTP server first, finishing the requests in
// flight, then the routing table and the units' connections.
func (m *Main) Close() error {
	var errs []error
	if m.server != nil {
		errs = append(errs, m.server.Close())
		m.server = nil
	}
	if m.metrics != nil {
		errs = append(errs, m.metrics.Close())
		m.metrics = nil
	}
	if m.Proxy != nil {
		m.Proxy.Close()
		m.Proxy = nil
	} else if m.Dialer != nil {
		errs = append(errs, m.Dialer.Close())
	}
	errs = append(errs, m.Closers.Close())
	return errors.Join(errs...)
}
