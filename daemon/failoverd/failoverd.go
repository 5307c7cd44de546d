// Package failoverd is the failover controller program: tradeunit
// failover-controller, wired once. Its Main opens the routing table and the
// storage topology beside it, joins the election of the table's failover
// controllers (an etcd lease election, or a lock file beside a table file)
// and, while it is the active one, fails units' replicated storage over
// when their primary dies (package failover).
package failoverd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"syscall"

	"tradeunit/admin"
	"tradeunit/daemon"
	"tradeunit/election"
	"tradeunit/failover"
	"tradeunit/pki"
	"tradeunit/routing"
	"tradeunit/secrets"
)

// Config is the program's configuration. Start from DefaultConfig.
type Config struct {
	Routes   string // the routing table: a file, or etcd://HOST:PORT/PREFIX
	Failover failover.Config
	// Holder is this controller's name in an etcd election.
	Holder string
	// Secrets is the secrets file the storage passwords come from (with
	// the TRADEUNIT_PASSWORD_* environment variables).
	Secrets         string
	Metrics         string // serve GET /metrics here; "" for none
	MetricsAddrFile string
	Log             daemon.LogConfig
	// TLS names the certificate, key, CA and revocation list of every
	// internal connection (mutual TLS); none: plaintext.
	TLS pki.Files
	// CrashAfterStep, for fault tests, SIGKILLs the process right after
	// the failover step of that name (fence, unmap, promote, remap, ...):
	// the next controller must finish or undo what it left.
	CrashAfterStep string
}

// DefaultConfig returns the configuration tradeunit failover-controller
// starts with.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	return Config{Failover: failover.DefaultConfig(), Holder: fmt.Sprintf("%s-%d", host, os.Getpid()), Log: daemon.DefaultLogConfig()}
}

// Flags binds the configuration to flags of fs; each flag's default is the
// field's current value, so no default is written twice.
func (c *Config) Flags(fs *flag.FlagSet) {
	f := &c.Failover
	fs.StringVar(&c.Routes, "routes", c.Routes, "routing table: a file, or etcd://HOST:PORT/PREFIX (required)")
	fs.DurationVar(&f.Every, "every", f.Every, "time between two rounds of checks")
	fs.IntVar(&f.FailAfter, "fail-after", f.FailAfter, "rounds in a row the controller's own check of a primary must fail before it is suspected dead")
	fs.DurationVar(&f.CheckTimeout, "check-timeout", f.CheckTimeout, "bound of each check of one server")
	fs.StringVar(&f.HealthURL, "health", f.HealthURL, "health checker's base URL: a second observer that must see the unit failing or ejected too (empty: none)")
	fs.DurationVar(&f.MinInterval, "min-interval", f.MinInterval, "least time between two failovers of one unit (the topology's last failover counts)")
	fs.IntVar(&f.MaxPerHour, "max-per-hour", f.MaxPerHour, "most failovers of all units in an hour")
	fs.BoolVar(&f.Off, "off", f.Off, "fail nothing over (check, decide, log and export metrics only); per unit, label it failover=off")
	fs.BoolVar(&f.Rejoin, "rejoin", f.Rejoin, "rejoin a fenced old primary as a replica once it answers again read-only (one with errant transactions is refused: rebuild it)")
	fs.StringVar(&f.AdminUser, "admin-user", f.AdminUser, "administrative MariaDB user the checks and failovers connect as (password from the secrets)")
	fs.StringVar(&f.ReplUser, "repl-user", f.ReplUser, "replication user re-pointed replicas connect as (password from the secrets)")
	fs.DurationVar(&f.ApplyTimeout, "apply-timeout", f.ApplyTimeout, "longest wait for the chosen replica to apply what it received")
	fs.DurationVar(&f.AckTimeout, "ack-timeout", f.AckTimeout, "longest wait for the new primary's first acknowledging replica")
	fs.DurationVar(&f.LockRetry, "lock-retry", f.LockRetry, "with a table file: how often a standby controller tries the lock")
	fs.DurationVar(&f.LeaseTTL, "lease-ttl", f.LeaseTTL, "with etcd: how long the election lease lasts unrenewed (how soon a standby takes over)")
	fs.StringVar(&c.Holder, "holder", c.Holder, "this controller's name in the etcd election")
	fs.StringVar(&c.Secrets, "secrets", c.Secrets, "secrets file with the storage passwords (mode 600); the TRADEUNIT_PASSWORD_* environment variables are read too")
	fs.StringVar(&c.Metrics, "metrics", c.Metrics, "serve Prometheus metrics (GET /metrics) on this address; off if empty")
	fs.StringVar(&c.MetricsAddrFile, "metrics-addr-file", c.MetricsAddrFile, "write the bound metrics address to this file (for port 0)")
	fs.StringVar(&c.CrashAfterStep, "crash-after-step", c.CrashAfterStep, "fault tests only: kill -9 this process right after the failover step of this name (fence, unmap, promote, remap, ...)")
	c.Log.Flags(fs)
	c.TLS.Flags(fs)
}

// Validate reports a bad setting; it changes nothing.
func (c Config) Validate() error {
	var errs []error
	if c.Routes == "" {
		errs = append(errs, errors.New("no routing table: pass --routes FILE or etcd://HOST:PORT/PREFIX"))
	}
	if c.Holder == "" {
		errs = append(errs, errors.New("--holder is empty"))
	}
	return errors.Join(append(errs, c.Failover.Validate(), c.Log.Validate(), c.TLS.Validate())...)
}

// Args returns the command-line flags of tradeunit failover-controller with
// this configuration, as a child process.
func (c Config) Args() []string { return daemon.Args("failover-controller", DefaultConfig(), c) }

// Main is a running failover controller.
type Main struct {
	Config Config
	daemon.Common

	Controller *failover.Controller // set by Run
	metrics    *daemon.HTTPServer
	work       *daemon.Background
}

// NewMain returns a Main with the default configuration.
func NewMain() *Main { return &Main{Config: DefaultConfig()} }

// ParseFlags parses args into m.Config with the flags of fs, and validates it.
func (m *Main) ParseFlags(fs *flag.FlagSet, args []string) error {
	return daemon.ParseFlags(fs, args, m.Config.Flags, func() error { return m.Config.Validate() })
}

// Run opens the table and the topology and starts the controller; it
// returns once it runs (it may still be standing by).
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
	routes, err := daemon.OpenRoutes(ctx, c.Routes, m.Keys, m.Logger)
	if err != nil {
		return err
	}
	m.Closers.Add(routes.Close)
	daemon.RegisterRoutesMetrics(m.Registry, routes)
	opts := daemon.RoutingOptions(m.Keys, m.Logger)
	top, err := routing.OpenTopology(ctx, c.Routes, opts)
	if err != nil {
		return err
	}
	m.Closers.Add(top.Close)
	el, closeElection, err := election.ForTable(c.Routes, "failover", opts.TLS, c.Failover.LeaseTTL, c.Failover.LockRetry, c.Holder)
	if err != nil {
		return err
	}
	m.Closers.Add(closeElection)
	client := daemon.InternalClient(m.Keys)
	adm := &admin.Admin{Routes: routes, Topology: top, Passwords: passwords, HTTP: client, Who: failover.Who, Why: "automatic failover: primary dead"}
	deps := failover.Deps{Routes: routes, Topology: top, Observer: failover.MariaDB{Admin: adm, User: c.Failover.AdminUser},
		Failover: adm, Election: el, Registry: m.Registry, Logger: m.Logger}
	if c.Failover.HealthURL != "" {
		deps.Checker = failover.HealthChecker{URL: c.Failover.HealthURL, Client: client}
	}
	if step := c.CrashAfterStep; step != "" {
		c.Failover.AfterStep = func(s string) {
			if s == step {
				m.Logger.Error("crashing, as --crash-after-step asks", "step", s)
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
			}
		}
	}
	if m.Controller, err = failover.New(c.Failover, deps); err != nil {
		return err
	}
	if m.metrics, err = daemon.ServeMetrics(c.Metrics, c.MetricsAddrFile, m.Registry, m.Keys, m.Logger); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	m.work = daemon.NewBackground()
	m.work.Go(m.Controller.Run)
	m.Logger.Info("failover controller running", "routes", c.Routes, "holder", c.Holder, "off", c.Failover.Off, "health", c.Failover.HealthURL)
	return nil
}

// Wait blocks until ctx ends.
func (m *Main) Wait(ctx context.Context) error { return m.work.Wait(ctx) }

// Close stops the controller (a failover under way is cut short; the next
// active controller resumes it) and gives the election up, then closes the
// table.
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
