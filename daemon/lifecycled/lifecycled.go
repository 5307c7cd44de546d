// Package lifecycled is the lifecycle controller program: tradeunit
// lifecycle, wired once. Its Main opens the routing table and the storage
// topology beside it, joins the election of the table's controllers (an
// etcd lease election, or a lock file beside a table file) and, while it
// is the active one, applies the lifecycle policy (package lifecycle):
// warm full or old units, add fresh ones, move quiet ones to cold storage.
package lifecycled

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"tradeunit/daemon"
	"tradeunit/election"
	"tradeunit/lifecycle"
	"tradeunit/pki"
	"tradeunit/routing"
	"tradeunit/rpc"
	"tradeunit/secrets"
)

// Config is the controller program's configuration. Start from
// DefaultConfig.
type Config struct {
	Routes    string // the routing table: a file, or etcd://HOST:PORT/PREFIX
	Lifecycle lifecycle.ControllerConfig
	// Move is how units are moved to cold storage; the controller retires
	// the old data once cold (the seed's "old data deleted").
	Move lifecycle.Config
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
}

// DefaultConfig returns the configuration tradeunit lifecycle starts with.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	move := lifecycle.DefaultConfig()
	move.Retire = true
	return Config{Lifecycle: lifecycle.DefaultControllerConfig(), Move: move, Holder: fmt.Sprintf("%s-%d", host, os.Getpid()),
		Log: daemon.DefaultLogConfig()}
}

// Flags binds the configuration to flags of fs; each flag's default is the
// field's current value, so no default is written twice.
func (c *Config) Flags(fs *flag.FlagSet) {
	l := &c.Lifecycle
	fs.StringVar(&c.Routes, "routes", c.Routes, "routing table: a file, or etcd://HOST:PORT/PREFIX (required)")
	fs.DurationVar(&l.Every, "every", l.Every, "time between two rounds of the policy")
	fs.Int64Var(&l.MaxOrders, "max-orders", l.MaxOrders, "warm a hot unit holding this many orders (0: off)")
	fs.Int64Var(&l.MaxBytes, "max-bytes", l.MaxBytes, "warm a hot unit whose storage is this many bytes (0: off)")
	fs.DurationVar(&l.MaxAge, "max-age", l.MaxAge, "warm a hot unit whose oldest order is this old (0: off)")
	fs.IntVar(&l.MinHot, "min-hot", l.MinHot, "fewest hot units accepting new orders per partition; below it fresh units are added (a warmed unit is replaced one for one anyway)")
	fs.Float64Var(&l.CoolBelow, "cool-below", l.CoolBelow, "a warm unit below this many changes per second ...")
	fs.DurationVar(&l.CoolAfter, "cool-after", l.CoolAfter, "... for this long is moved to cold storage")
	fs.DurationVar(&l.CoolWindow, "cool-window", l.CoolWindow, "the window each round measures a warm unit's change rate over")
	fs.IntVar(&l.MaxMoves, "max-moves", l.MaxMoves, "most moves to cold storage under way at once")
	fs.IntVar(&l.MaxUnits, "max-units", l.MaxUnits, "never add a fresh unit once the table has this many (0: no cap); a full unit then stays hot")
	fs.StringVar((*string)(&l.FreshStorage), "fresh-storage", string(l.FreshStorage), "storage DSN of a fresh unit; {unit} stands for its number")
	fs.StringVar((*string)(&l.ColdStorage), "cold-storage", string(l.ColdStorage), "cold storage DSN of a cooled unit; {unit} stands for its number")
	mv := &c.Move
	fs.IntVar(&mv.RangeRows, "range-rows", mv.RangeRows, "a move's rows per range (compared and repaired as one)")
	fs.DurationVar(&mv.Pause, "pause", mv.Pause, "a move's rest between two ranges of the live copy")
	fs.DurationVar(&mv.MaxFreeze, "max-freeze", mv.MaxFreeze, "longest a move's freeze may last until the switch")
	fs.DurationVar(&mv.Settle, "settle", mv.Settle, "longest wait after a switch for every logic service to read the copy")
	fs.BoolVar(&mv.Retire, "retire", mv.Retire, "delete a moved unit's old data once it is cold")
	fs.BoolVar(&l.Off, "off", l.Off, "take no action (measure and export metrics only); per unit, label it lifecycle=off")
	fs.DurationVar(&l.LockRetry, "lock-retry", l.LockRetry, "with a table file: how often a standby controller tries the lock")
	fs.DurationVar(&l.LeaseTTL, "lease-ttl", l.LeaseTTL, "with etcd: how long the election lease lasts unrenewed (how soon a standby takes over)")
	fs.StringVar(&c.Holder, "holder", c.Holder, "this controller's name in the etcd election")
	fs.StringVar(&c.Secrets, "secrets", c.Secrets, "secrets file with the storage passwords (mode 600); the TRADEUNIT_PASSWORD_* environment variables are read too")
	fs.StringVar(&c.Metrics, "metrics", c.Metrics, "serve Prometheus metrics (GET /metrics) on this address; off if empty")
	fs.StringVar(&c.MetricsAddrFile, "metrics-addr-file", c.MetricsAddrFile, "write the bound metrics address to this file (for port 0)")
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
	return errors.Join(append(errs, c.Lifecycle.Validate(), c.Move.Validate(), c.Log.Validate(), c.TLS.Validate())...)
}

// Args returns the command-line flags of tradeunit lifecycle with this
// configuration, as a child process.
func (c Config) Args() []string { return daemon.Args("lifecycle", DefaultConfig(), c) }

// Main is a running lifecycle controller.
type Main struct {
	Config Config
	daemon.Common

	// Cooler moves units to cold storage. nil: package lifecycle's Mover
	// with Config.Move.
	Cooler lifecycle.Cooler

	Controller *lifecycle.Controller // set by Run
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
	el, closeElection, err := election.ForTable(c.Routes, "lifecycle", opts.TLS, c.Lifecycle.LeaseTTL, c.Lifecycle.LockRetry, c.Holder)
	if err != nil {
		return err
	}
	m.Closers.Add(closeElection)
	cooler := m.Cooler
	if cooler == nil {
		// The mover confirms each switch with the unit's logic services,
		// with this program's certificate.
		pool := rpc.NewPool(rpc.WithKeys(m.Keys)...)
		m.Closers.Add(pool.Close)
		if cooler, err = lifecycle.NewMover(c.Move, lifecycle.Deps{Routes: routes, Topology: top, Passwords: passwords,
			Dialer: pool, Who: lifecycle.Who, Why: "lifecycle policy", Logger: m.Logger}); err != nil {
			return err
		}
	}
	m.Controller, err = lifecycle.NewController(c.Lifecycle, lifecycle.ControllerDeps{Routes: routes, Topology: top, Cooler: cooler,
		Election: el, Passwords: passwords, Registry: m.Registry, Logger: m.Logger})
	if err != nil {
		return err
	}
	if m.metrics, err = daemon.ServeMetrics(c.Metrics, c.MetricsAddrFile, m.Registry, m.Keys, m.Logger); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	m.work = daemon.NewBackground()
	m.work.Go(m.Controller.Run)
	m.Logger.Info("lifecycle controller running", "routes", c.Routes, "holder", c.Holder, "off", c.Lifecycle.Off)
	return nil
}

// Wait blocks until ctx ends.
func (m *Main) Wait(ctx context.Context) error { return m.work.Wait(ctx) }

// Close stops the controller (its moves stop; the mover resumes them
// later) and gives the election up, then closes the table.
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
