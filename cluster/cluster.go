// Package cluster starts a whole tradeunit cluster on one machine, as real
// processes on loopback ports: every unit's logic-service replicas and every
// directory shard's service replicas as child processes of the tradeunit
// binary (started with the same flags tradeunit unit and tradeunit directory
// take), and the proxy and the health checker as the very programs
// tradeunit proxy and tradeunit health run (daemon/proxyd, daemon/healthd),
// in this process. tradeunit dev runs one for a new user; the end-to-end
// tests start one in a line and then stop, kill and restart its parts.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"google.golang.org/grpc"

	"tradeunit"
	"tradeunit/daemon"
	"tradeunit/daemon/directoryd"
	"tradeunit/daemon/healthd"
	"tradeunit/daemon/lifecycled"
	"tradeunit/daemon/proxyd"
	"tradeunit/daemon/queryd"
	"tradeunit/daemon/unitd"
	"tradeunit/dsn"
	"tradeunit/eventbus"
	"tradeunit/health"
	"tradeunit/lifecycle"
	"tradeunit/pki"
	"tradeunit/proxy"
	"tradeunit/routing"
	"tradeunit/rpc"
)

// Config describes a cluster. Start from DefaultConfig.
type Config struct {
	Dir      string // data, logs and the routing table go here
	Binary   string // the tradeunit binary to run the units with
	Units    int    // units 1..Units (a restart also brings back every unit its table knows)
	Replicas int    // logic-service replicas per unit
	// Storage returns a unit's storage; nil: an SQLite file in Dir. A
	// unit whose storage has replicas runs logic services that follow the
	// storage topology (tradeunit unit --routes), reading the passwords
	// from Unit.Secrets; the others get their one DSN (--db).
	Storage func(tradeunit.UnitID) routing.Storage
	// Shards is the number of directory shards (their buckets split
	// evenly); a restart keeps the previous table's shards and buckets.
	Shards int
	// ShardReplicas is the number of service replicas per shard.
	ShardReplicas int
	// ShardStorage returns a shard's storage; nil: an SQLite file in Dir.
	// A shard whose storage has replicas runs services that follow the
	// storage topology.
	ShardStorage func(routing.ShardID) routing.Storage
	// Directory is the configuration every shard replica starts from; its
	// shard, storage, routing table and addresses are the cluster's, and
	// its reconciler finishes pending entries as late as the proxy's
	// (Proxy.Proxy.StaleAfter).
	Directory directoryd.Config
	// RoutesSpec is where the routing table lives: "" for Dir/routes.json,
	// or etcd://HOST:PORT/PREFIX.
	RoutesSpec string
	// Routes, if set, edits the initial routing table before it is written:
	// partitions, merchants, labels, canary.
	Routes func(*routing.Table)
	// Unit is the configuration every logic-service replica starts from;
	// its unit, storage and addresses are the cluster's.
	Unit unitd.Config
	// UnitMetrics makes every replica (of units and shards) serve
	// Prometheus metrics on a loopback port (Replica.MetricsURL).
	UnitMetrics bool
	// Proxy is the proxy's configuration; its routing table, merchants and
	// health checker are the cluster's.
	Proxy proxyd.Config
	// Health, if set, starts a health checker that the proxy follows.
	Health *healthd.Config
	// HealthDialer, if set, is how the checker reaches the units (tests
	// route it through a fault-injecting link); the proxy's are direct.
	HealthDialer tradeunit.LogicDialer
	// HealthDial, if set (and HealthDialer not), are dial options added to
	// the checker's own, its certificate included (tests route it through
	// a fault-injecting link).
	HealthDial []grpc.DialOption
	// CADir is the cluster's certificate authority's directory: "" for
	// Dir/pki/ca, made on the first start and reused by later ones.
	CADir string
	// Plaintext turns mutual TLS off: every internal connection is
	// plaintext and unauthenticated (a benchmark's baseline). By default
	// every process has its own certificate in Dir/pki.
	Plaintext bool
	// Events, if set, runs the event flow (relays, bus, query store's
	// consumer), and the proxy serves the listing from its query store.
	Events *Events
	// Lifecycle, if set, runs the lifecycle controller (tradeunit
	// lifecycle) over the cluster's table, with an operator's certificate;
	// over SQLite, its fresh and cold storages are files in Dir. The
	// cluster starts the fresh units it adds.
	Lifecycle *lifecycled.Config
	Logger    *slog.Logger
}

// DefaultConfig returns a cluster of 4 units with 2 replicas each and 2
// directory shards with 2 replicas each, over SQLite files in dir, run by
// binary, its proxy on a free loopback port and no health checker.
func DefaultConfig(dir, binary string) Config {
	c := Config{Dir: dir, Binary: binary, Units: 4, Replicas: 2, Shards: 2, ShardReplicas: 2, Unit: unitd.DefaultConfig(),
		Directory: directoryd.DefaultConfig(), Proxy: proxyd.DefaultConfig(), Logger: slog.Default()}
	c.Proxy.Listen = "127.0.0.1:0"
	return c
}

// Validate reports a bad setting; it changes nothing.
func (c Config) Validate() error {
	if c.Dir == "" || c.Binary == "" {
		return errors.New("cluster: Dir and Binary are required")
	}
	if c.Units < 1 || c.Replicas < 1 || tradeunit.UnitID(c.Units) > tradeunit.MaxUnitID {
		return fmt.Errorf("cluster: need 1..%d units and at least one replica", tradeunit.MaxUnitID)
	}
	if c.Shards < 1 || c.ShardReplicas < 1 || c.Shards > tradeunit.DirectoryBuckets {
		return fmt.Errorf("cluster: need 1..%d directory shards and at least one replica each", tradeunit.DirectoryBuckets)
	}
	if c.Logger == nil {
		return errors.New("cluster: no logger")
	}
	errs := []error{c.Proxy.Validate()}
	if c.Health != nil {
		errs = append(errs, c.Health.Validate())
	}
	return errors.Join(errs...)
}

// Cluster is a running cluster.
type Cluster struct {
	Dir string
	// RoutesPath is the routing table's spec: a file path, or etcd://...
	// when the cluster runs on etcd.
	RoutesPath  string
	ProxyURL    string // e.g. http://127.0.0.1:8080
	Credentials *proxy.Credentials
	Units       []*Unit
	Shards      []*Shard

	// HealthURL is the health checker's base URL ("" without one): its API
	// is HealthURL+"/v1/units".
	HealthURL string

	// Proxy and Checker are the cluster's proxy and health checker
	// programs (Checker is nil without one).
	Proxy   *proxyd.Main
	Checker *healthd.Main
	// Lifecycle is the lifecycle controller (Config.Lifecycle), or nil.
	Lifecycle *lifecycled.Main

	// With Config.Events: the embedded bus (nil when external), every
	// unit's relays, the query store's consumer and the store's target.
	Bus        *eventbus.Embedded
	Relays     []*Relay
	Query      *queryd.Main
	QueryStore string
	busConfig  eventbus.Config

	cfg        Config
	mu         sync.Mutex // guards Units and Shards against the goroutine that starts added units
	routes     routing.Editor
	topology   routing.TopologyEditor
	healthPool *rpc.Pool   // the checker's, made of Config.HealthDial
	pki        *clusterPKI // nil with Config.Plaintext
	stopManage context.CancelFunc
	manageDone chan struct{}
}

// Unit is one unit of the cluster.
type Unit struct {
	ID       tradeunit.UnitID
	DSN      dsn.DSN // its primary when it started
	Replicas []*Replica
}

// Start starts a cluster and returns when every part serves.
func Start(ctx context.Context, cfg Config) (_ *Cluster, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	spec := cfg.RoutesSpec
	if spec == "" {
		spec = filepath.Join(cfg.Dir, "routes.json")
	}
	c := &Cluster{Dir: cfg.Dir, RoutesPath: spec, cfg: cfg}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	if c.Credentials, err = loadOrCreateCredentials(filepath.Join(cfg.Dir, "dev-credentials.json")); err != nil {
		return nil, err
	}
	if err := c.openPKI(); err != nil {
		return nil, fmt.Errorf("cluster: pki: %w", err)
	}
	c.cfg.Directory.Reconcile.StaleAfter = cfg.Proxy.Proxy.StaleAfter()
	if cfg.Events != nil {
		if err := c.startEvents(ctx); err != nil {
			return nil, err
		}
	}
	if err := c.startParts(ctx, spec); err != nil {
		return nil, err
	}
	opts := c.routingOptions()
	if c.routes, err = routing.Open(ctx, spec, opts); err != nil {
		return nil, err
	}
	if c.topology, err = routing.OpenTopology(ctx, spec, opts); err != nil {
		return nil, err
	}
	c.manage()
	if cfg.Health != nil {
		hcfg := *cfg.Health
		if hcfg.TLS, err = c.issue(pki.RoleChecker, "checker"); err != nil {
			return nil, err
		}
		c.Checker = &healthd.Main{Config: hcfg, Routes: c.routes, Dialer: cfg.HealthDialer, Common: daemon.Common{Logger: cfg.Logger}}
		if c.Checker.Dialer == nil && cfg.HealthDial != nil {
			keys, err := pki.LoadIfEnabled(hcfg.TLS)
			if err != nil {
				return nil, err
			}
			pool := rpc.NewPool(append(rpc.WithKeys(keys), cfg.HealthDial...)...)
			c.healthPool = pool
			c.Checker.Dialer = pool
		}
		if err := c.Checker.Run(ctx); err != nil {
			c.Checker = nil
			return nil, err
		}
		c.HealthURL = c.Checker.URL()
	}
	pcfg := cfg.Proxy
	pcfg.Proxy.Health = c.HealthURL
	if pcfg.TLS, err = c.issue(pki.RoleProxy, "proxy"); err != nil {
		return nil, err
	}
	if cfg.Events != nil && pcfg.QueryStore == "" {
		pcfg.QueryStore = c.QueryStore
	}
	c.Proxy = &proxyd.Main{Config: pcfg, Routes: c.routes, Credentials: c.Credentials, Common: daemon.Common{Logger: cfg.Logger}}
	if err := c.Proxy.Run(ctx); err != nil {
		c.Proxy = nil
		return nil, err
	}
	c.ProxyURL = c.Proxy.URL()
	if cfg.Lifecycle != nil {
		if err := c.startLifecycle(ctx, spec); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// startLifecycle starts the lifecycle controller.
func (c *Cluster) startLifecycle(ctx context.Context, spec string) error {
	lc := *c.cfg.Lifecycle
	lc.Routes = spec
	if c.cfg.Storage == nil {
		lc.Lifecycle.FreshStorage = lifecycle.Template("sqlite:" + filepath.Join(c.Dir, "unit-{unit}.db"))
		lc.Lifecycle.ColdStorage = lifecycle.Template("sqlite:" + filepath.Join(c.Dir, "cold", "unit-{unit}.db"))
	}
	if lc.Secrets == "" {
		lc.Secrets = c.cfg.Unit.Secrets
	}
	var err error
	// The controller changes the table as an operator does, and reads the
	// move's marker from the units as one.
	if lc.TLS, err = c.issue(pki.RoleAdmin, "lifecycle"); err != nil {
		return err
	}
	c.Lifecycle = &lifecycled.Main{Config: lc, Common: daemon.Common{Logger: c.cfg.Logger}}
	if err := c.Lifecycle.Run(ctx); err != nil {
		c.Lifecycle = nil
		return err
	}
	return nil
}

// Addrs returns the addresses of the unit's replicas.
func (u *Unit) Addrs() []string {
	out := make([]string, len(u.Replicas))
	for i, r := range u.Replicas {
		out[i] = r.Addr()
	}
	return out
}

// Unit returns the unit with the given number.
func (c *Cluster) Unit(id tradeunit.UnitID) *Unit {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, u := range c.Units {
		if u.ID == id {
			return u
		}
	}
	return nil
}

// Routes returns the routing table the cluster's proxy uses now.
func (c *Cluster) Routes() *routing.Table { return c.routes.Current() }

// Topology returns the storage topology the cluster's units follow now.
func (c *Cluster) Topology() *routing.Topology { return c.topology.Current() }

// Health returns the cluster's health checker, or nil.
func (c *Cluster) Health() *health.Checker {
	if c.Checker == nil {
		return nil
	}
	return c.Checker.Checker
}

// StopHealth stops the health checker, as if its host failed: its API stops
// answering and proxies fall back on their own view. It is safe to call
// without a checker, and more than once.
func (c *Cluster) StopHealth() {
	if c.Checker != nil {
		c.Checker.Close()
		c.Checker = nil
	}
}

// Close stops the proxy first, so no new call reaches a unit, then the
// checker, then every replica gracefully, the units' before the shards'
// (whose reconcilers call them).
func (c *Cluster) Close() error {
	var errs []error
	if c.Lifecycle != nil { // its moves resume when it runs again
		errs = append(errs, c.Lifecycle.Close())
		c.Lifecycle = nil
	}
	if c.Proxy != nil {
		errs = append(errs, c.Proxy.Close())
		c.Proxy = nil
	}
	c.StopHealth()
	if c.healthPool != nil {
		c.healthPool.Close()
	}
	if c.stopManage != nil {
		c.stopManage()
		<-c.manageDone
		c.stopManage = nil
	}
	if c.routes != nil {
		errs = append(errs, c.routes.Close())
	}
	if c.topology != nil {
		errs = append(errs, c.topology.Close())
	}
	errs = append(errs, c.closeEvents())
	for _, r := range c.Replicas() {
		errs = append(errs, r.Stop())
	}
	return errors.Join(errs...)
}

// loadOrCreateCredentials keeps the demo merchants' keys across restarts.
func loadOrCreateCredentials(path string) (*proxy.Credentials, error) {
	if _, err := os.Stat(path); err == nil {
		return proxy.LoadCredentials(path)
	}
	c := &proxy.Credentials{}
	for _, mchid := range []string{"1900000001", "1900000002"} {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, err
		}
		c.Merchants = append(c.Merchants, proxy.Merchant{Mchid: mchid, APIKey: "key-" + hex.EncodeToString(b[:])})
	}
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o600); err != nil {
		return nil, err
	}
	return c, nil
}
