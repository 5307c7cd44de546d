package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"google.golang.org/grpc"
	"io"
	"log/slog"
	"net/http"
	"os"
	"testing"
	"time"

	"tradeunit"
	"tradeunit/cluster"
	"tradeunit/daemon"
	"tradeunit/daemon/healthd"
	"tradeunit/daemon/lifecycled"
	"tradeunit/dsn"
	"tradeunit/internal/etcdtest"
	"tradeunit/pki"
	"tradeunit/routing"
	"tradeunit/store/storetest"
)

// options of a test cluster.
type options struct {
	storage       string // "sqlite" (default) or "mysql"
	units         int    // default 3
	replicas      int    // default 2
	shards        int    // directory shards, default 2
	shardReplicas int    // default 1
	// shardStorageOf gives shards their storage (see storageOf).
	shardStorageOf func(routing.ShardID) routing.Storage
	sequenceBlock  int64
	unitTimeout    time.Duration
	// health starts a health checker that the proxy follows (see
	// checkerEvery); healthDial shapes its connections to the units.
	health     *healthd.Config
	healthDial []grpc.DialOption
	// routes edits the initial routing table (partitions, labels, ...).
	routes func(*routing.Table)
	// dsn rewrites a unit's storage DSN, e.g. to reach it through a link
	// that injects faults.
	dsn            func(tradeunit.UnitID, dsn.DSN) dsn.DSN
	balanceWindow  time.Duration
	probeRetention time.Duration
	unitMetrics    bool
	// routesSpec keeps the routing table in etcd (etcd://...) of etcd,
	// whose CA the cluster then shares, so each trusts the other.
	routesSpec string
	etcd       *etcdtest.Cluster
	// storageOf gives units their storage (replicas make their logic
	// services follow the storage topology), with the passwords in the
	// secrets file secrets; unitLog is their logging.
	storageOf func(tradeunit.UnitID) routing.Storage
	secrets   string
	unitLog   *daemon.LogConfig
	// events runs the event flow (relays, bus, query store's consumer).
	events *cluster.Events
	// plaintext turns mutual TLS off, for tests that read the gRPC frames
	// between proxy and unit.
	plaintext bool
	// lifecycle runs the lifecycle controller.
	lifecycle *lifecycled.Config
}

// patientUnitTimeout is the proxy's unit timeout for tests that measure
// something else than how the proxy treats a slow unit: this machine's disk
// stalls for seconds at times, longer than the 3 s default.
const patientUnitTimeout = 15 * time.Second

// checkerEvery returns a health checker's configuration scaled to a probe
// interval: probes bounded by half of it, back-offs of 5 and 60 intervals.
func checkerEvery(interval time.Duration) *healthd.Config {
	c := healthd.DefaultConfig()
	c.Listen = "127.0.0.1:0"
	c.Health.Interval, c.Health.ProbeTimeout = interval, interval/2
	c.Health.Policy.BaseEjection, c.Health.Policy.MaxEjection = 5*interval, 60*interval
	return &c
}

// startCluster starts a cluster of real processes and stops it when the test ends.
func startCluster(t *testing.T, o options) *cluster.Cluster {
	t.Helper()
	cfg := cluster.DefaultConfig(t.TempDir(), binary)
	cfg.Units, cfg.Health, cfg.Routes, cfg.UnitMetrics, cfg.RoutesSpec = 3, o.health, o.routes, o.unitMetrics, o.routesSpec
	if o.units > 0 {
		cfg.Units = o.units
	}
	if o.replicas > 0 {
		cfg.Replicas = o.replicas
	}
	cfg.ShardReplicas = 1
	if o.shards > 0 {
		cfg.Shards = o.shards
	}
	if o.shardReplicas > 0 {
		cfg.ShardReplicas = o.shardReplicas
	}
	cfg.ShardStorage, cfg.Directory.Secrets = o.shardStorageOf, o.secrets
	if o.sequenceBlock > 0 {
		cfg.Unit.Service.SequenceBlock = o.sequenceBlock
	}
	if o.probeRetention > 0 {
		cfg.Unit.Janitor.Retention, cfg.Unit.Janitor.Every = o.probeRetention, o.probeRetention/5
	}
	if o.unitTimeout > 0 {
		cfg.Proxy.Proxy.UnitTimeout = o.unitTimeout
	}
	if o.balanceWindow > 0 {
		cfg.Proxy.Proxy.BalanceWindow = o.balanceWindow
	}
	if o.healthDial != nil {
		cfg.HealthDial = o.healthDial
	}
	if o.storageOf != nil {
		cfg.Storage = o.storageOf
	}
	cfg.Unit.Secrets = o.secrets
	cfg.Events, cfg.Plaintext, cfg.Lifecycle = o.events, o.plaintext, o.lifecycle
	if o.etcd != nil {
		cfg.CADir = o.etcd.CA.Dir()
	}
	if o.unitLog != nil {
		cfg.Unit.Log, cfg.Directory.Log = *o.unitLog, *o.unitLog
	}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if o.storage == "mysql" {
		dsns := map[tradeunit.UnitID]dsn.DSN{}
		for i := 1; i <= cfg.Units; i++ {
			dsns[tradeunit.UnitID(i)] = storetest.NewMySQLDatabase(t)
		}
		cfg.Storage = func(u tradeunit.UnitID) routing.Storage { return routing.Storage{Primary: dsns[u]} }
		shardDSNs := map[routing.ShardID]dsn.DSN{}
		for i := 1; i <= cfg.Shards; i++ {
			shardDSNs[routing.ShardID(i)] = storetest.NewMySQLDatabase(t)
		}
		cfg.ShardStorage = func(s routing.ShardID) routing.Storage { return routing.Storage{Primary: shardDSNs[s]} }
	}
	if o.dsn != nil {
		storage := cfg.Storage
		if storage == nil {
			dir := cfg.Dir
			storage = func(u tradeunit.UnitID) routing.Storage {
				return routing.Storage{Primary: dsn.MustParse(fmt.Sprintf("sqlite:%s/unit-%d.db", dir, u))}
			}
		}
		cfg.Storage = func(u tradeunit.UnitID) routing.Storage {
			st := storage(u)
			st.Primary = o.dsn(u, st.Primary)
			return st
		}
	}
	c, err := cluster.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start cluster: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close cluster: %v", err)
		}
	})
	if c.HealthURL != "" {
		internalClients.Store(c.HealthURL, adminClient(t, c))
	}
	return c
}

// client calls the public API as one merchant.
type client struct {
	t    *testing.T
	base string
	key  string
	http *http.Client
}

func newClient(t *testing.T, c *cluster.Cluster, merchant int) *client {
	return &client{t: t, base: c.ProxyURL, key: c.Credentials.Merchants[merchant].APIKey,
		http: &http.Client{Timeout: 30 * time.Second}}
}

// response is a decoded API response.
type response struct {
	status int
	body   map[string]any
	header http.Header
}

func (r response) str(key string) string { s, _ := r.body[key].(string); return s }

func (r response) code() string { return r.str("code") }

// call sends a request; body is marshalled to JSON unless it is a string.
func (c *client) call(method, path string, body any) response {
	c.t.Helper()
	r, err := c.try(method, path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	return r
}

// try is call that returns transport errors instead of failing the test,
// for use from goroutines.
func (c *client) try(method, path string, body any) (response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return response{}, err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return response{}, err
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out := response{status: resp.StatusCode, header: resp.Header}
	data, _ := io.ReadAll(resp.Body)
	if len(data) > 0 {
		if err := json.Unmarshal(data, &out.body); err != nil {
			return out, fmt.Errorf("%s %s: status %d, body not JSON: %q", method, path, resp.StatusCode, data)
		}
	}
	if resp.Header.Get("Request-ID") == "" {
		return out, fmt.Errorf("%s %s: no Request-ID header", method, path)
	}
	return out, nil
}

// want fails the test unless r has the status (and, for errors, the code).
func want(t *testing.T, what string, r response, status int, code string) {
	t.Helper()
	if r.status != status || (code != "" && r.code() != code) {
		t.Fatalf("%s: got %d %v, want %d %s", what, r.status, r.body, status, code)
	}
}

func createBody(outTradeNo string, total int64) map[string]any {
	return map[string]any{"out_trade_no": outTradeNo, "description": "e2e order",
		"amount": map[string]any{"total": total, "currency": "CNY"}}
}

// mustCreate creates an order and returns its number.
func (c *client) mustCreate(outTradeNo string, total int64) string {
	c.t.Helper()
	r := c.call("POST", "/v3/orders", createBody(outTradeNo, total))
	want(c.t, "create "+outTradeNo, r, 200, "")
	return r.str("order_no")
}

func unitOf(r response) tradeunit.UnitID {
	f, _ := r.body["unit"].(float64)
	return tradeunit.UnitID(f)
}

func uniq(prefix string) string { return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()%1e12) }

// adminClient returns an HTTP client for c's internal endpoints (metrics,
// the checker's API): it presents the operator's certificate the cluster
// issued (Dir/pki/admin.*), or is a plain client when the cluster runs
// without TLS (no such files).
func adminClient(t *testing.T, c *cluster.Cluster) *http.Client {
	t.Helper()
	files := c.AdminTLS()
	if !files.Enabled() {
		return daemon.InternalClient(nil)
	}
	keys, err := pki.Load(files)
	if err != nil {
		t.Fatal(err)
	}
	return daemon.InternalClient(keys)
}

// scrapeInternal is scrape of an internal endpoint of c, with adminClient.
// It replaces any client registered for url: an earlier test's cluster may
// have served on the same port, with another CA.
func scrapeInternal(t *testing.T, c *cluster.Cluster, url string) string {
	t.Helper()
	internalClients.Store(url, adminClient(t, c))
	return scrape(t, url)
}
