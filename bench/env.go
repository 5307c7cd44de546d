package bench

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"tradeunit"
	"tradeunit/cluster"
	"tradeunit/daemon/directoryd"
	"tradeunit/daemon/proxyd"
	"tradeunit/daemon/unitd"
	"tradeunit/dsn"
	"tradeunit/proxy"
	"tradeunit/routing"
	"tradeunit/secrets"
	"tradeunit/store/sqlstore"
)

// Env starts the processes of a benchmark scenario — units and a proxy, each
// a separate process so that each layer's CPU can be read from its own
// accounting — and cleans up after it.
type Env struct {
	Binary  string // the tradeunit binary
	Dir     string // logs, SQLite files, routing table
	Storage string // "sqlite" or "mysql"
	// MySQL is the server for mysql storage, a storage DSN without a
	// database (default sqlstore.LocalMySQL); its password comes from the
	// environment (TRADEUNIT_PASSWORD_<USER>, see package secrets).
	MySQL string
	// Secrets is the secrets file the processes and this one find the
	// MySQL password in ("": the environment): a replicated set's
	// (UseReplicatedSet).
	Secrets string

	// BatchWait, when set, is every Batched process's batch-wait: how
	// long a batch's first item waits for others (batch.Config.MaxWait).
	BatchWait time.Duration

	storagePids func() []int // the replicated set's servers, nil: every mariadbd
	procs       []*cluster.Process
	dbs         []string
	n           int
}

// Mchid is the merchant benchmarks run as.
const Mchid = "1900000001"

// apiKey is the benchmark merchant's key in the scenario's merchants file.
const apiKey = "bench-key-0123456789abcdef"

// NewStorage returns a DSN of fresh, empty storage.
func (e *Env) NewStorage() (dsn.DSN, error) {
	e.n++
	if e.Storage == "sqlite" {
		return dsn.Parse("sqlite:" + filepath.Join(e.Dir, fmt.Sprintf("bench-%d.db", e.n)))
	}
	if e.Storage != "mysql" {
		return dsn.DSN{}, fmt.Errorf("storage %q: want sqlite or mysql", e.Storage)
	}
	server, err := e.mysqlServer()
	if err != nil {
		return dsn.DSN{}, err
	}
	var b [4]byte
	rand.Read(b[:])
	name := fmt.Sprintf("tradeunit_bench_%s_%d", hex.EncodeToString(b[:]), e.n)
	e.dbs = append(e.dbs, name)
	return server.WithDatabase(name), nil
}

func (e *Env) mysqlServer() (dsn.DSN, error) {
	if e.MySQL != "" {
		return dsn.Parse(e.MySQL)
	}
	return sqlstore.LocalMySQL, nil
}

// Batching says whether a scenario's processes commit concurrent writes
// together (group commit, as shipped) or each in a transaction and call of
// its own: the baseline of what group commit saves.
type Batching int

const (
	Batched Batching = iota
	Unbatched
)

// StartUnit starts one logic-service process of unit id over d.
func (e *Env) StartUnit(ctx context.Context, id tradeunit.UnitID, d dsn.DSN, b Batching) (*cluster.Replica, error) {
	cfg := unitd.DefaultConfig()
	cfg.Service.Unit, cfg.DB = id, d
	cfg.Service.Batch.Disabled, cfg.Service.ChangeBatch.Disabled = b == Unbatched, b == Unbatched
	if e.BatchWait > 0 {
		cfg.Service.Batch.MaxWait, cfg.Service.ChangeBatch.MaxWait = e.BatchWait, e.BatchWait
	}
	cfg.Secrets = e.Secrets
	cfg.Metrics = "127.0.0.1:0" // and profiles: DIR/run/unit-ID.metrics-addr
	r := cluster.NewReplica(e.Binary, e.Dir, fmt.Sprintf("unit-%d", id), cfg)
	if err := r.Start(ctx); err != nil {
		return nil, err
	}
	e.procs = append(e.procs, r.Process)
	return r, nil
}

// DirectoryMode says how a benchmark proxy keeps one order per out_trade_no.
type DirectoryMode int

const (
	// WithDirectory starts a directory shard holding every bucket, over
	// fresh storage of the scenario's kind: the shipped path.
	WithDirectory DirectoryMode = iota
	// WithoutDirectory runs the proxy with --unsafe-without-directory: the
	// baseline that shows what the directory costs.
	WithoutDirectory
)

// Front is a benchmark's proxy and, with the directory, its shard.
type Front struct {
	Proxy *cluster.Process
	Shard *cluster.Replica // nil without the directory
}

// ShardPids returns the directory shard's process, whose CPU counts as the
// directory's (none without it).
func (f *Front) ShardPids() []int {
	if f.Shard == nil {
		return nil
	}
	return []int{f.Shard.Pid()}
}

// Stop stops the proxy and the shard.
func (f *Front) Stop() {
	f.Proxy.Stop()
	if f.Shard != nil {
		f.Shard.Stop()
	}
}

// StartProxy writes a routing table of the given units (and, with the
// directory, starts its shard and publishes it) and starts a proxy process
// over it. Its operators' port serves profiles: DIR/run/proxy-N.metrics-addr.
func (e *Env) StartProxy(ctx context.Context, units []*cluster.Replica, dir DirectoryMode, b Batching) (*Front, error) {
	t := &routing.Table{Revision: 1}
	for _, u := range units {
		t.Units = append(t.Units, routing.Unit{ID: u.Unit, Partition: routing.DefaultPartition,
			LogicAddrs: []string{u.Addr()}, Available: true, Temperature: routing.Hot, AcceptNew: true})
	}
	e.n++
	routes := filepath.Join(e.Dir, fmt.Sprintf("routes-%d.json", e.n))
	if err := routing.WriteFile(routes, t); err != nil {
		return nil, err
	}
	f := &Front{}
	if dir == WithDirectory {
		shard, err := e.startShard(ctx, routes, b)
		if err != nil {
			return nil, err
		}
		f.Shard = shard
		t.Revision++
		t.Directory = routing.SplitBuckets([]routing.ShardID{shard.Shard})
		t.Directory.Shards[0].LogicAddrs = []string{shard.Addr()}
		if err := routing.WriteFile(routes, t); err != nil {
			return nil, err
		}
		if err := cluster.WaitHolding(ctx, t.Directory); err != nil {
			return nil, err
		}
	}
	merchants := filepath.Join(e.Dir, "merchants.json")
	data, _ := json.Marshal(proxy.Credentials{Merchants: []proxy.Merchant{{Mchid: Mchid, APIKey: apiKey}}})
	if err := os.WriteFile(merchants, data, 0o600); err != nil {
		return nil, err
	}
	cfg := proxyd.DefaultConfig()
	cfg.Routes, cfg.Merchants = routes, merchants
	cfg.Proxy.UnsafeWithoutDirectory = dir == WithoutDirectory
	cfg.Proxy.ShardBatch.Disabled = b == Unbatched
	if e.BatchWait > 0 {
		cfg.Proxy.ShardBatch.MaxWait = e.BatchWait
	}
	name := fmt.Sprintf("proxy-%d", e.n)
	cfg.Metrics, cfg.MetricsAddrFile = "127.0.0.1:0", filepath.Join(e.Dir, "run", name+".metrics-addr")
	p := cluster.NewProcess(e.Binary, e.Dir, name, func(listen, addrFile string) []string {
		c := cfg
		c.Listen, c.AddrFile = listen, addrFile
		return c.Args()
	})
	if err := p.Start(ctx); err != nil {
		return nil, err
	}
	e.procs = append(e.procs, p)
	f.Proxy = p
	return f, nil
}

// startShard starts directory shard 1 over fresh storage, following the
// routing table at routes.
func (e *Env) startShard(ctx context.Context, routes string, b Batching) (*cluster.Replica, error) {
	d, err := e.NewStorage()
	if err != nil {
		return nil, err
	}
	cfg := directoryd.DefaultConfig()
	cfg.Shard, cfg.Routes, cfg.DB = 1, routes, d
	cfg.Batch.Disabled = b == Unbatched
	if e.BatchWait > 0 {
		cfg.Batch.MaxWait = e.BatchWait
	}
	cfg.Secrets = e.Secrets
	cfg.Metrics = "127.0.0.1:0" // and profiles: DIR/run/directory-N.metrics-addr
	r := cluster.NewShardReplica(e.Binary, e.Dir, fmt.Sprintf("directory-%d", e.n), cfg)
	if err := r.Start(ctx); err != nil {
		return nil, err
	}
	e.procs = append(e.procs, r.Process)
	return r, nil
}

// Target opens a benchmark target.
func (e *Env) Target(ctx context.Context, spec string, unit tradeunit.UnitID, conc int) (Target, error) {
	if d, err := dsn.Parse(spec); err == nil && e.Secrets != "" {
		passwords, err := e.passwords()
		if err != nil {
			return nil, err
		}
		return OpenStorageTarget(ctx, d, passwords, Mchid, unit)
	}
	return OpenTarget(ctx, spec, apiKey, Mchid, unit, conc)
}

func (e *Env) passwords() (*secrets.Secrets, error) { return secrets.ForProgram(e.Secrets) }

// StoragePids returns the processes of the storage server (mariadbd), whose
// CPU counts as the storage layer's; none for SQLite, which runs inside the
// logic service.
func (e *Env) StoragePids() []int {
	if e.Storage != "mysql" {
		return nil
	}
	if e.storagePids != nil {
		return e.storagePids()
	}
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, ent := range entries {
		var pid int
		if _, err := fmt.Sscan(ent.Name(), &pid); err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "comm"))
		if err == nil && (strings.TrimSpace(string(comm)) == "mariadbd" || strings.TrimSpace(string(comm)) == "mysqld") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Close stops every process and drops the MySQL databases.
func (e *Env) Close() {
	for _, p := range e.procs {
		p.Stop()
	}
	if len(e.dbs) == 0 {
		return
	}
	server, err := e.mysqlServer()
	if err != nil {
		return
	}
	passwords, err := e.passwords()
	if err != nil {
		return
	}
	cfg, err := server.MySQLConfig(passwords)
	if err != nil {
		return
	}
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return
	}
	defer db.Close()
	for _, name := range e.dbs {
		db.Exec("DROP DATABASE IF EXISTS `" + name + "`")
	}
}
