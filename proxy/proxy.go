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
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"tradeunit"
	"tradeunit/batch"
	"tradeunit/query"
	"tradeunit/routing"
	"tradeunit/selection"
)

// Config holds a Proxy's settings. Start from DefaultConfig.
type Config struct {
	// MaxCreateAttempts is how many units one create may call, 1 to
	// selection.MaxPick.
	MaxCreateAttempts int
	// UnitTimeout bounds one call to one logic-service replica.
	UnitTimeout time.Duration
	// ShardTimeout bounds one call to one directory shard replica.
	ShardTimeout time.Duration
	// Health is the base URL of the health checker to follow (e.g.
	// http://127.0.0.1:8081); empty: the proxy relies on its own view.
	Health string
	// BalanceWindow is the history of request counts that hot-spot
	// balancing weighs; the selection plan is refreshed ten times per
	// window.
	BalanceWindow time.Duration
	// Passive tunes the proxy's own view of failing units.
	Passive selection.PassiveConfig
	// MaxHeaderBytes is the largest header block (request line included)
	// the API accepts; a larger one is answered 431 in the JSON error
	// shape, with a Request-ID. 0: no check here. The HTTP server's own
	// limit must be larger (tradeunit proxy makes it so), or the server
	// answers 431 itself, in plain text.
	MaxHeaderBytes int
	// AccessLog logs one line per API request (method, path, status,
	// duration, request id, merchant) at info level.
	AccessLog bool
	// UnsafeWithoutDirectory is for the directory's benchmark baseline
	// only: creates skip the key directory and call the ranked units
	// directly, so two creates of one out_trade_no on two units make two
	// orders. Lookups by out_trade_no and refunds still need the directory.
	UnsafeWithoutDirectory bool
	// ShardBatch groups the directory puts of concurrent creates into one
	// call per shard.
	ShardBatch batch.Config
	// Zone is the zone (machine room) the proxy runs in: calls to a unit
	// try its logic replicas in this zone (routing.Unit.LogicZones) before
	// the others. Empty: no preference.
	Zone string
}

// DefaultConfig returns the settings of a proxy as tradeunit proxy starts
// it.
func DefaultConfig() Config {
	return Config{MaxCreateAttempts: 3, UnitTimeout: 3 * time.Second, ShardTimeout: 3 * time.Second, BalanceWindow: selection.DefaultBalanceWindow,
		Passive: selection.DefaultPassiveConfig(), ShardBatch: batch.DefaultConfig()}
}

// StaleAfter is how long a pending directory entry may wait before
// another create, a lookup or the shard's reconciler finishes it: longer
// than any create takes (a unit call, twice, for a replica that got no
// answer and the next).
func (c Config) StaleAfter() time.Duration { return 2 * c.UnitTimeout }

// Validate reports a bad setting; it changes nothing.
func (c Config) Validate() error {
	if c.MaxCreateAttempts < 1 || c.MaxCreateAttempts > selection.MaxPick {
		return fmt.Errorf("proxy: MaxCreateAttempts must be between 1 and %d, got %d", selection.MaxPick, c.MaxCreateAttempts)
	}
	if c.UnitTimeout <= 0 || c.ShardTimeout <= 0 {
		return fmt.Errorf("proxy: UnitTimeout and ShardTimeout must be positive, got %v and %v", c.UnitTimeout, c.ShardTimeout)
	}
	if c.BalanceWindow <= 0 {
		return fmt.Errorf("proxy: BalanceWindow must be positive, got %v", c.BalanceWindow)
	}
	if c.Zone != "" && !routing.ValidZone(c.Zone) {
		return fmt.Errorf("proxy: Zone %q must match [a-z0-9_-]{1,32}", c.Zone)
	}
	if err := c.ShardBatch.Validate(); err != nil {
		return err
	}
	return c.Passive.Validate()
}

// Deps are what a Proxy works with; all are required.
type Deps struct {
	Routes      routing.Source // the routing table
	Credentials *Credentials   // merchants and their API keys
	// Dialer connects to the units' logic services (rpc.Pool over gRPC);
	// the proxy closes it.
	Dialer tradeunit.LogicDialer
	// Registry receives the proxy's metrics, served at GET /metrics.
	Registry *prometheus.Registry
	Logger   *slog.Logger
	// Query is the non-real-time query store the merchants' listing,
	// statistics and bills are served from; nil: those answer
	// QUERY_STORE_UNAVAILABLE. The live API never uses it.
	Query query.Reader
	// HealthClient reaches the checker at Config.Health; nil: a plain
	// client. Over mutual TLS it carries the proxy's certificate
	// (daemon.InternalClient).
	HealthClient *http.Client
}

func (d Deps) validate() error {
	switch {
	case d.Routes == nil:
		return errors.New("proxy: no routing table")
	case d.Dialer == nil:
		return errors.New("proxy: no Dialer to reach the units")
	case d.Credentials == nil || len(d.Credentials.Merchants) == 0:
		return errors.New("proxy: no merchants configured")
	case d.Registry == nil || d.Logger == nil:
		return errors.New("proxy: Registry and Logger are required")
	}
	return nil
}

// Proxy serves the public API over the units of a routing table.
type Proxy struct {
	cfg      Config
	health   *http.Client // reaches the checker (Deps.HealthClient)
	query    query.Reader
	registry *prometheus.Registry
	routes   routing.Source
	keys     map[[32]byte]string // SHA-256 of API key → mchid
	dialer   tradeunit.LogicDialer
	balancer *selection.Balancer
	passive  *selection.Passive
	metrics  *metrics
	log      *slog.Logger
	// shardPuts batches the directory puts of concurrent creates.
	shardPuts *shardPuts

	plan    atomic.Pointer[selection.Plan]
	checker atomic.Pointer[followedReport] // nil: not following a checker
	replan  chan struct{}                  // asks the planner for a new plan now

	stop context.CancelFunc
	wg   sync.WaitGroup
}

// New returns a Proxy. Close releases it.
func New(cfg Config, deps Deps) (*Proxy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := deps.validate(); err != nil {
		return nil, err
	}
	keys, err := deps.Credentials.index()
	if err != nil {
		return nil, err
	}
	passive, err := selection.NewPassive(cfg.Passive)
	if err != nil {
		return nil, err
	}
	ctx, stop := context.WithCancel(context.Background())
	p := &Proxy{
		cfg: cfg, health: deps.HealthClient, query: deps.Query, registry: deps.Registry, routes: deps.Routes, keys: keys, dialer: deps.Dialer,
		balancer: selection.NewBalancer(nil, cfg.BalanceWindow),
		passive:  passive,
		metrics:  newMetrics(deps.Registry),
		log:      deps.Logger, replan: make(chan struct{}, 1), stop: stop,
	}
	p.shardPuts = newShardPuts(p, cfg.ShardBatch)
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
	p.shardPuts.Close()
	p.dialer.Close()
}
