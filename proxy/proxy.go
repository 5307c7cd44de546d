// Package proxy is the stateless entry point of the system: the public
// REST/JSON API. It creates each new order on a unit it chooses (late shard
// binding, with order retry on other units), and routes every later call by
// the unit number inside the order number. Any number of proxies can run
// side by side; all they share is the routing table.
package proxy

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"tradeunit/routing"
	"tradeunit/selection"
)

// Config configures a Proxy.
type Config struct {
	Routes      routing.Source // the routing table
	Credentials *Credentials   // merchants and their API keys
	// MaxCreateAttempts is how many units one create may try (default 3).
	MaxCreateAttempts int
	// UnitTimeout bounds one call to one logic-service replica (default 3s).
	UnitTimeout time.Duration
	Logger      *slog.Logger // default slog.Default()
}

// Validate fills defaults and checks cfg.
func (c *Config) Validate() error {
	if c.Routes == nil {
		return errors.New("proxy: no routing table")
	}
	if c.Credentials == nil || len(c.Credentials.Merchants) == 0 {
		return errors.New("proxy: no merchants configured")
	}
	if c.MaxCreateAttempts == 0 {
		c.MaxCreateAttempts = 3
	}
	if c.MaxCreateAttempts < 1 {
		return errors.New("proxy: MaxCreateAttempts must be at least 1")
	}
	if c.UnitTimeout == 0 {
		c.UnitTimeout = 3 * time.Second
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
	pool     *pool
	balancer *selection.Balancer
	log      *slog.Logger
	stop     context.CancelFunc
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
		cfg: cfg, routes: cfg.Routes, keys: keys, pool: newPool(),
		balancer: selection.NewBalancer(nil), log: cfg.Logger, stop: stop,
	}
	go p.pool.follow(ctx, cfg.Routes, p.log)
	return p, nil
}

// Close closes the connections to the units.
func (p *Proxy) Close() {
	p.stop()
	p.pool.close()
}
