// Package proxy is the stateless entry point of the system: the public
// REST/JSON API. It creates each new order on a unit it chooses (late shard
// binding, with order retry on other units), and routes every later call by
// the unit number inside the order number. Any number of proxies can run
// side by side; all they share is the routing table (and, optionally, the
// health checker they follow).
package proxy

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"tradeunit"
	"tradeunit/routing"
	"tradeunit/selection"
)

// Config configures a Proxy.
type Config struct {
	Routes      routing.Source // the routing table
	Credentials *Credentials   // merchants and their API keys
	// MaxCreateAttempts is how many units one create may try (default 3,
	// at most selection.MaxPick).
	MaxCreateAttempts int
	// UnitTimeout bounds one call to one logic-service replica (default 3s).
	UnitTimeout time.Duration
	// Health is the base URL of the health checker to follow (e.g.
	// http://127.0.0.1:8081); empty: the proxy relies on its own view.
	Health string
	// BalanceWindow is the history of request counts that hot-spot
	// balancing weighs (default 10s); the selection plan is refreshed ten
	// times per window.
	BalanceWindow time.Duration
	// Passive tunes the proxy's own view of failing units.
	Passive selection.PassiveConfig
	// Dialer connects to the units' logic services (rpc.Pool over gRPC);
	// the proxy closes it.
	Dialer tradeunit.LogicDialer
	// Registry receives the proxy's metrics, served at GET /metrics; a new
	// registry if nil.
	Registry *prometheus.Registry
	Logger   *slog.Logger // default slog.Default()
}

// Validate fills defaults and checks cfg.
func (c *Config) Validate() error {
	if c.Routes == nil {
		return errors.New("proxy: no routing table")
	}
	if c.Dialer == nil {
		return errors.New("proxy: no Dialer to reach the units")
	}
	if c.Credentials == nil || len(c.Credentials.Merchants) == 0 {
		return errors.New("proxy: no merchants configured")
	}
	if c.MaxCreateAttempts == 0 {
		c.MaxCreateAttempts = 3
	}
	if c.MaxCreateAttempts < 1 || c.MaxCreateAttempts > selection.MaxPick {
		return errors.New("proxy: MaxCreateAttempts must be between 1 and 8")
	}
	if c.UnitTimeout == 0 {
		c.UnitTimeout = 3 * time.Second
	}
	if c.BalanceWindow <= 0 {
		c.BalanceWindow = selection.DefaultBalanceWindow
	}
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Proxy serves the public API over the units of a routing table.
type Proxy struct {
	cfg      Config
	routes   routing.Source
	keys     map[[32]byte]string // SHA-256 of API key → mchid
	dialer   tradeunit.LogicDialer
	balancer *selection.Balancer
	passive  *selection.Passive
	metrics  *metrics
	log      *slog.Logger

	plan    atomic.Pointer[selection.Plan]
	checker atomic.Pointer[selection.CheckerView] // nil: not following a checker
	replan  chan struct{}                         // asks the planner for a new plan now

	stop context.CancelFunc
	wg   sync.WaitGroup
}

// New returns a Proxy. Close releases it.
func New(cfg Config) (*Proxy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	keys, err := cfg.Credentials.index()
	if err != nil {
		return nil, err
	}
	ctx, stop := context.WithCancel(context.Background())
	p := &Proxy{
		cfg: cfg, routes: cfg.Routes, keys: keys, dialer: cfg.Dialer,
		balancer: selection.NewBalancer(nil, cfg.BalanceWindow),
		passive:  selection.NewPassive(cfg.Passive),
		metrics:  newMetrics(cfg.Registry),
		log:      cfg.Logger, replan: make(chan struct{}, 1), stop: stop,
	}
	p.rebuild() // the first request has a plan
	p.wg.Add(1)
	go func() { defer p.wg.Done(); p.planner(ctx) }()
	if cfg.Health != "" {
		p.wg.Add(1)
		go func() { defer p.wg.Done(); p.followChecker(ctx) }()
	}
	return p, nil
}

// Close stops following the routing table and the checker, and closes the
// connections to the units.
func (p *Proxy) Close() {
	p.stop()
	p.wg.Wait()
	p.dialer.Close()
}
