// Package cluster starts a whole tradeunit cluster on one machine, as real
// processes on loopback ports: every unit's logic-service replicas as child
// processes of the tradeunit binary, and the proxy. tradeunit dev runs one
// for a new user; the end-to-end tests start one in a line and then stop,
// kill and restart its parts.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"google.golang.org/grpc"

	"tradeunit"
	"tradeunit/health"
	"tradeunit/proxy"
	"tradeunit/routing"
	"tradeunit/rpc"
)

// Config describes a cluster.
type Config struct {
	Dir      string // data, logs and the routing table go here
	Binary   string // the tradeunit binary to run the units with
	Units    int    // number of units (default 4)
	Replicas int    // logic-service replicas per unit (default 2)
	// Storage returns a unit's storage DSN; default: an SQLite file in Dir.
	Storage func(tradeunit.UnitID) string
	// ProxyAddr is where the proxy listens (default 127.0.0.1:0).
	ProxyAddr string
	// SequenceBlock is passed to the units (0: their default).
	SequenceBlock     int64
	MaxCreateAttempts int
	UnitTimeout       time.Duration
	// BalanceWindow is the proxy's hot-spot balancing window (0: its
	// default).
	BalanceWindow time.Duration
	// Routes, if set, edits the initial routing table before it is written:
	// partitions, merchants, labels, canary.
	Routes func(*routing.Table)
	// RoutesSpec is where the routing table lives: "" for Dir/routes.json,
	// or etcd://HOST:PORT/PREFIX.
	RoutesSpec string
	// Health, if set, starts a health checker that the proxy follows.
	Health *HealthConfig
	// ProbeRetention is how long units keep probe orders (0: their default).
	ProbeRetention time.Duration
	// UnitMetrics makes every replica serve Prometheus metrics on a
	// loopback port (Replica.MetricsURL).
	UnitMetrics bool
	Logger      *slog.Logger
}

// HealthConfig configures the cluster's health checker.
type HealthConfig struct {
	Addr         string // listen address (default 127.0.0.1:0)
	Interval     time.Duration
	ProbeTimeout time.Duration
	Policy       health.Policy
	// DialOptions shape the checker's connections to the units (tests route
	// them through a fault-injecting TCP proxy); the proxy's are direct.
	DialOptions []grpc.DialOption
}

func (c *Config) setDefaults() error {
	if c.Dir == "" || c.Binary == "" {
		return errors.New("cluster: Dir and Binary are required")
	}
	if c.Units == 0 {
		c.Units = 4
	}
	if c.Replicas == 0 {
		c.Replicas = 2
	}
	if c.Units < 1 || c.Replicas < 1 || tradeunit.UnitID(c.Units) > tradeunit.MaxUnitID {
		return fmt.Errorf("cluster: need 1..%d units and at least one replica", tradeunit.MaxUnitID)
	}
	if c.Storage == nil {
		dir := c.Dir
		c.Storage = func(u tradeunit.UnitID) string {
			return "sqlite:" + filepath.Join(dir, fmt.Sprintf("unit-%d.db", u))
		}
	}
	if c.ProxyAddr == "" {
		c.ProxyAddr = "127.0.0.1:0"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
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

	// HealthURL is the health checker's base URL ("" without one): its API
	// is HealthURL+"/v1/units".
	HealthURL string

	cfg          Config
	mu           sync.Mutex // guards Units against the goroutine that starts added units
	routes       routing.Editor
	stopManage   context.CancelFunc
	manageDone   chan struct{}
	proxy        *proxy.Proxy
	server       *http.Server
	health       *health.Checker
	healthServer *http.Server
	healthStop   context.CancelFunc
	healthDone   chan struct{}
}

// Unit is one unit of the cluster.
type Unit struct {
	ID       tradeunit.UnitID
	DSN      string
	Replicas []*Replica
}

// Start starts a cluster and returns when every part serves.
func Start(ctx context.Context, cfg Config) (_ *Cluster, err error) {
	if err := cfg.setDefaults(); err != nil {
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

	// A restart brings back every unit the table knows, those added by an
	// operator included, with the policy operators set.
	old, err := previousTable(ctx, spec)
	if err != nil {
		return nil, err
	}
	table := &routing.Table{Revision: 1}
	for _, id := range unitsToStart(cfg.Units, old) {
		u, err := c.startUnit(ctx, id, storageOf(old, id))
		if err != nil {
			return nil, err
		}
		table.Units = append(table.Units, u)
	}
	keepPolicy(old, table)
	if cfg.Routes != nil {
		cfg.Routes(table)
	}
	if err := publishTable(ctx, spec, old != nil, table); err != nil {
		return nil, err
	}
	if c.routes, err = routing.Open(ctx, spec, routing.FileOptions{Logger: cfg.Logger}); err != nil {
		return nil, err
	}
	c.manage()
	if cfg.Health != nil {
		if err := c.startHealth(*cfg.Health); err != nil {
			return nil, err
		}
	}
	c.proxy, err = proxy.New(proxy.Config{
		Routes: c.routes, Dialer: rpc.NewPool(), Credentials: c.Credentials, MaxCreateAttempts: cfg.MaxCreateAttempts,
		UnitTimeout: cfg.UnitTimeout, Health: c.HealthURL, BalanceWindow: cfg.BalanceWindow, Logger: cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.ProxyAddr)
	if err != nil {
		return nil, fmt.Errorf("proxy listen: %w", err)
	}
	c.ProxyURL = "http://" + ln.Addr().String()
	c.server = &http.Server{Handler: c.proxy.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go c.server.Serve(ln)
	return c, nil
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

// Close stops the proxy first, so no new call reaches a unit, then every
// replica gracefully.
func (c *Cluster) Close() error {
	var errs []error
	if c.server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		errs = append(errs, c.server.Shutdown(ctx))
		cancel()
	}
	if c.proxy != nil {
		c.proxy.Close()
	}
	c.StopHealth()
	if c.stopManage != nil {
		c.stopManage()
		<-c.manageDone
	}
	if c.routes != nil {
		errs = append(errs, c.routes.Close())
	}
	for _, u := range c.Units {
		for _, r := range u.Replicas {
			errs = append(errs, r.Stop())
		}
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
