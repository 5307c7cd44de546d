// Package healthd is the health checker program: tradeunit health, and the
// checker of tradeunit dev and the tests, wired once. Its Main opens the
// routing table, probes every unit over gRPC and serves the checker's API
// (GET /v1/units, with long-poll) and metrics over an HTTP server with
// bounded timeouts.
package healthd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"tradeunit/pki"

	"tradeunit"
	"tradeunit/daemon"
	"tradeunit/health"
	"tradeunit/routing"
	"tradeunit/rpc"
)

// Config is the checker program's configuration. Start from DefaultConfig.
type Config struct {
	Listen   string // HTTP listen address of the API and /metrics
	AddrFile string // write the bound address here once serving (for port 0)
	Routes   string // the routing table: a file, or etcd://HOST:PORT/PREFIX
	Health   health.Config
	HTTP     daemon.HTTPConfig
	Log      daemon.LogConfig
	// TLS names the certificate, key, CA and revocation list of every
	// internal connection (mutual TLS); none: plaintext.
	TLS pki.Files
}

// DefaultConfig returns the configuration tradeunit health starts with.
func DefaultConfig() Config {
	return Config{Listen: "127.0.0.1:8081", Health: health.DefaultConfig(), HTTP: healthHTTP(), Log: daemon.DefaultLogConfig()}
}

// healthHTTP is the HTTP bounds of the checker: long-polls wait up to a
// minute, so responses may take that long to write.
func healthHTTP() daemon.HTTPConfig {
	c := daemon.DefaultHTTPConfig()
	c.WriteTimeout = 2 * health.MaxPollTimeout
	return c
}

// Flags binds the configuration to flags of fs; each flag's default is the
// field's current value, so no default is written twice.
func (c *Config) Flags(fs *flag.FlagSet) {
	fs.StringVar(&c.Listen, "listen", c.Listen, "HTTP listen address of the API (GET /v1/units) and metrics")
	fs.StringVar(&c.AddrFile, "addr-file", c.AddrFile, "write the bound address to this file once serving (for port 0)")
	fs.StringVar(&c.Routes, "routes", c.Routes, "routing table: a file, or etcd://HOST:PORT/PREFIX (required)")
	h, p := &c.Health, &c.Health.Policy
	fs.DurationVar(&h.Interval, "interval", h.Interval, "time between two probes of a unit")
	fs.DurationVar(&h.ProbeTimeout, "probe-timeout", h.ProbeTimeout, "bound of each call of a probe")
	fs.IntVar(&h.CreateAttempts, "create-attempts", h.CreateAttempts, "units a create tries (the proxies' --create-attempts), for the partitions' computed availability")
	fs.DurationVar(&h.ColdProbeTimeout, "cold-probe-timeout", h.ColdProbeTimeout, "bound of each call of a probe of a cold unit (its reads may be slower)")
	fs.Float64Var(&p.MaxEjectShare, "max-eject-share", p.MaxEjectShare, "largest share of a partition's units ejected at once; beyond it the partition is in panic (0: eject none)")
	fs.IntVar(&p.FailuresToEject, "failures", p.FailuresToEject, "consecutive failed probes that eject a unit")
	fs.Float64Var(&p.MinSuccessRate, "min-success-rate", p.MinSuccessRate, "success rate over the window under which a unit is ejected (0: this rule is off)")
	fs.IntVar(&p.Window, "window", p.Window, "probes the success rate and latency p99 cover")
	fs.IntVar(&p.MinSamples, "min-samples", p.MinSamples, "probes the window must hold before the success rate can eject")
	fs.IntVar(&p.SuccessesToReturn, "successes-to-return", p.SuccessesToReturn, "passing probes in a row that bring an ejected unit back after its back-off")
	fs.DurationVar(&p.BaseEjection, "base-ejection", p.BaseEjection, "back-off of a first ejection, doubled for each further one")
	fs.DurationVar(&p.MaxEjection, "max-ejection", p.MaxEjection, "longest back-off; healthy this long, a unit starts again from --base-ejection")
	c.HTTP.Flags(fs)
	c.Log.Flags(fs)
	c.TLS.Flags(fs)
}

// Args returns the command-line flags of tradeunit health that start the
// program with this configuration, as a child process.
func (c Config) Args() []string {
	return daemon.Args("health", DefaultConfig(), c)
}

// Validate reports a bad setting; it changes nothing.
func (c Config) Validate() error {
	return errors.Join(c.Health.Validate(), c.HTTP.Validate(), c.Log.Validate(), c.TLS.Validate())
}

// Main is a running health checker.
type Main struct {
	Config Config
	// Common holds the logger (set it to override the configured one),
	// the metrics registry and what Close closes.
	daemon.Common

	// In-process overrides, set before Run (the local cluster, tests); nil
	// means built from Config as tradeunit health does. Main closes Dialer.
	Routes routing.Source
	Dialer tradeunit.LogicDialer

	// Set by Run.
	Checker *health.Checker
	server  *daemon.HTTPServer
	stop    context.CancelFunc
	done    chan struct{}
}

// NewMain returns a Main with the default configuration.
func NewMain() *Main { return &Main{Config: DefaultConfig()} }

// ParseFlags parses args into m.Config with the flags of fs (which carries
// the command's usage), and validates it.
func (m *Main) ParseFlags(fs *flag.FlagSet, args []string) error {
	return daemon.ParseFlags(fs, args, m.Config.Flags, func() error { return m.Config.Validate() })
}

// Run starts the checker and returns once its API serves.
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
	if m.Dialer == nil {
		m.Dialer = rpc.NewPool(rpc.WithKeys(m.Keys)...)
	}
	m.Checker, err = health.New(m.Config.Health, health.Deps{Routes: m.Routes, Dialer: m.Dialer,
		Registry: m.Registry, Logger: m.Logger})
	if err != nil {
		m.Dialer.Close()
		return err
	}
	m.server, err = daemon.ServeInternal(m.Config.Listen, m.Config.AddrFile, m.Checker.Handler(m.Registry), m.Config.HTTP, m.Keys, m.Logger)
	if err != nil {
		m.Dialer.Close()
		return fmt.Errorf("health checker listen: %w", err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	m.stop, m.done = stop, make(chan struct{})
	go func() { m.Checker.Run(runCtx); close(m.done) }()
	return nil
}

// URL returns the base URL of the checker's API, e.g. http://127.0.0.1:8081.
func (m *Main) URL() string { return daemon.InternalURL(m.server.Addr, m.Keys) }

// Wait blocks until ctx ends (nil) or the server fails (its error).
func (m *Main) Wait(ctx context.Context) error { return daemon.Wait(ctx, m.server.Failed()) }

// Close stops the checker at once, long-polls included: proxies see it gone
// and fall back on their own view. The probes stop and their connections
// close (the checker's Run closes its dialer).
func (m *Main) Close() error {
	var errs []error
	if m.server != nil {
		errs = append(errs, m.server.Server.Close())
		m.server = nil
	}
	if m.stop != nil {
		m.stop()
		<-m.done
		m.stop = nil
	}
	errs = append(errs, m.Closers.Close())
	return errors.Join(errs...)
}
