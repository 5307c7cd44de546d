package e2e

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"tradeunit"
	"tradeunit/admin"
	"tradeunit/cluster"
	"tradeunit/daemon/directoryd"
	"tradeunit/daemon/proxyd"
	"tradeunit/daemon/unitd"
	"tradeunit/dsn"
	"tradeunit/proxy"
	"tradeunit/replication/localdb"
	"tradeunit/routing"
	"tradeunit/rpc"
)

// haOptions shape a cluster with one unit on replicated MariaDB storage.
type haOptions struct {
	sqliteUnits   int           // units 1..n on SQLite files, one logic service each; the replicated unit is n+1
	logicReplicas int           // logic services of the replicated unit (default 2)
	maxLag        time.Duration // their --replica-max-lag (default 1s)
	// shardOnSet keeps the directory shard's storage on the set too
	// (database tradeunit_d1), its services following the topology;
	// otherwise it is an SQLite file.
	shardOnSet    bool
	shardReplicas int // service replicas of the shard (default 1)
	// secondShard adds directory shard 2 on an SQLite file, one service,
	// with half the buckets (shard 1 keeps the other half): a failure
	// domain beside shard 1.
	secondShard bool
	// rooms places the cluster in machine rooms (startRooms), the rooms
	// named as zones: the set's i-th server and the replicated unit's i-th
	// logic service in room i (round robin), and SQLite unit u's one
	// service in room u (mod the rooms: unit 1 in the second). The
	// directory shards and the proxy stay in the root namespace.
	rooms []*room
}

// haCluster is a cluster of real processes whose last unit keeps its
// storage on a local replicated MariaDB set (three mariadbd: one primary,
// two semi-sync replicas) and whose logic services follow the routing
// table (tradeunit unit --routes): the table names the unit's primary and
// replicas, and a failover changes it. The proxy runs in the test process.
type haCluster struct {
	t        *testing.T
	dir      string
	set      *localdb.Set
	unit     tradeunit.UnitID // the replicated unit
	db       string           // its database on the set
	path     string           // routes.json
	routes   *routing.TableFile
	topology *routing.TopologyFile
	admin    *admin.Admin
	logic    []*cluster.Replica // the replicated unit's logic services
	shard    []*cluster.Replica // directory shard 1's services
	shard2   []*cluster.Replica // shard 2's (secondShard)
	api      *client
	mchid    string
	proxy    *proxyd.Main
	cleanup  []func()
}

// needMariaDB skips the test when the MariaDB server binaries are missing,
// except under CI=true, where it fails.
func needMariaDB(t *testing.T) {
	t.Helper()
	if err := localdb.Available(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

// startSet starts a replicated set of three MariaDB servers for the test,
// the i-th in rooms[i] if rooms are given.
func startSet(t *testing.T, dir string, rooms ...*room) *localdb.Set {
	t.Helper()
	needMariaDB(t)
	// Killed servers and connections are the point: keep the driver quiet.
	mysql.SetLogger(log.New(io.Discard, "", 0))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := localdb.DefaultConfig(dir)
	if len(rooms) > 0 {
		for i := range cfg.Instances {
			cfg.Places = append(cfg.Places, rooms[i%len(rooms)].dbPlace())
		}
		cfg.UserHost = roomUserHost
	}
	set, err := localdb.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start MariaDB set: %v", err)
	}
	// Killed, not stopped: the data is thrown away, and a clean shutdown
	// of a primary waits up to 30 s for acknowledgements it is owed.
	t.Cleanup(func() {
		for _, in := range set.Instances {
			in.Kill()
		}
	})
	return set
}

// shardDB is the directory shard's database on a set.
const shardDB = "tradeunit_d1"

// storageDSN is the storage topology's DSN of the unit's database on in,
// as the application user (which read_only fences).
func storageDSN(in *localdb.Instance, db string) dsn.DSN { return in.AppStorage(db) }

func startHA(t *testing.T, o haOptions) *haCluster {
	t.Helper()
	needMariaDB(t)
	if o.logicReplicas == 0 {
		o.logicReplicas = 2
	}
	if o.maxLag == 0 {
		o.maxLag = time.Second
	}
	if o.shardReplicas == 0 {
		o.shardReplicas = 1
	}
	ctx := context.Background()
	dir := t.TempDir()
	c := &haCluster{t: t, dir: dir, unit: tradeunit.UnitID(o.sqliteUnits + 1), path: filepath.Join(dir, "routes.json")}
	c.db = fmt.Sprintf("tradeunit_u%d", c.unit)
	c.set = startSet(t, filepath.Join(dir, "mariadb"), o.rooms...)
	// placeIn places a process in the n-th room (round robin) and returns
	// the room's name, the zone; without rooms, it does nothing.
	placeIn := func(p *cluster.Process, n int) string {
		if len(o.rooms) == 0 {
			return ""
		}
		r := o.rooms[n%len(o.rooms)]
		r.place(p)
		return r.name
	}
	// zonesOf maps the addresses of processes placed in rooms to the
	// rooms' names; nil without rooms.
	zonesOf := func(addrs, zones []string) map[string]string {
		var m map[string]string
		for i, z := range zones {
			if z != "" {
				if m == nil {
					m = map[string]string{}
				}
				m[addrs[i]] = z
			}
		}
		return m
	}
	// Cleanups run last first: the processes stop before the servers, so
	// that no commit (a heartbeat) waits at shutdown for an acknowledgement.
	t.Cleanup(c.close)

	table, topology := &routing.Table{Revision: 1}, &routing.Topology{Revision: 1}
	for i := 1; i <= o.sqliteUnits; i++ {
		id := tradeunit.UnitID(i)
		cfg := unitd.DefaultConfig()
		cfg.Service.Unit, cfg.DB = id, dsn.MustParse(fmt.Sprintf("sqlite:%s/unit-%d.db", dir, id))
		r := cluster.NewReplica(binary, dir, fmt.Sprintf("unit-%d-r1", id), cfg)
		zone := placeIn(r.Process, i)
		if err := r.Start(ctx); err != nil {
			t.Fatal(err)
		}
		c.cleanup = append(c.cleanup, func() { r.Stop() })
		table.Units = append(table.Units, routing.Unit{ID: id, LogicAddrs: []string{r.Addr()}, Available: true, AcceptNew: true,
			LogicZones: zonesOf([]string{r.Addr()}, []string{zone})})
		topology.Set(id, routing.Storage{Primary: r.DSN})
	}
	// The replicated unit is listed before its logic services start, masked:
	// they read their storage from the topology.
	in := c.set.Instances
	table.Units = append(table.Units, routing.Unit{ID: c.unit})
	var servers, serverZones []string
	for i, server := range in {
		servers = append(servers, server.Addr())
		if len(o.rooms) > 0 {
			serverZones = append(serverZones, o.rooms[i%len(o.rooms)].name)
		}
	}
	topology.Set(c.unit, routing.Storage{Primary: storageDSN(in[0], c.db), Replicas: []dsn.DSN{storageDSN(in[1], c.db), storageDSN(in[2], c.db)},
		Zones: zonesOf(servers, serverZones)})
	shardStorage := routing.Storage{Primary: dsn.MustParse("sqlite:" + filepath.Join(dir, "directory-1.db"))}
	if o.shardOnSet {
		shardStorage = routing.Storage{Primary: storageDSN(in[0], shardDB), Replicas: []dsn.DSN{storageDSN(in[1], shardDB), storageDSN(in[2], shardDB)}}
	}
	topology.SetShard(1, shardStorage)
	shard2Storage := routing.Storage{Primary: dsn.MustParse("sqlite:" + filepath.Join(dir, "directory-2.db"))}
	if o.secondShard {
		topology.SetShard(2, shard2Storage)
	}
	if err := routing.WriteTopologyFile(routing.TopologyPath(c.path), topology); err != nil {
		t.Fatal(err)
	}
	if err := routing.WriteFile(c.path, table); err != nil {
		t.Fatal(err)
	}
	startShard := func(id routing.ShardID, replicas int, db dsn.DSN) ([]*cluster.Replica, []string) {
		var ps []*cluster.Replica
		var addrs []string
		for i := 1; i <= replicas; i++ {
			cfg := directoryd.DefaultConfig()
			cfg.Shard, cfg.Routes, cfg.Secrets, cfg.DB = id, c.path, c.set.SecretsPath(), db
			cfg.Storage.CheckEvery, cfg.Reconcile.StaleAfter = 100*time.Millisecond, 4*time.Second
			p := cluster.NewShardReplica(binary, dir, fmt.Sprintf("directory-%d-r%d", id, i), cfg)
			if err := p.Start(ctx); err != nil {
				t.Fatal(err)
			}
			ps = append(ps, p)
			c.cleanup = append(c.cleanup, func() { p.Stop() })
			addrs = append(addrs, p.Addr())
		}
		return ps, addrs
	}
	var shardDSN dsn.DSN // none: the services follow the topology
	if !o.shardOnSet {
		shardDSN = shardStorage.Primary
	}
	var shardAddrs, shard2Addrs []string
	c.shard, shardAddrs = startShard(1, o.shardReplicas, shardDSN)
	if o.secondShard {
		c.shard2, shard2Addrs = startShard(2, 1, shard2Storage.Primary)
	}
	var addrs, zones []string
	for i := 1; i <= o.logicReplicas; i++ {
		cfg := unitd.DefaultConfig()
		cfg.Service.Unit, cfg.Routes, cfg.Secrets = c.unit, c.path, c.set.SecretsPath()
		cfg.Storage.MaxLag, cfg.Storage.CheckEvery, cfg.Storage.Heartbeat = o.maxLag, 100*time.Millisecond, 50*time.Millisecond
		cfg.Metrics = "127.0.0.1:0"
		p := cluster.NewReplica(binary, dir, fmt.Sprintf("unit-%d-r%d", c.unit, i), cfg)
		zone := placeIn(p.Process, i-1)
		if err := p.Start(ctx); err != nil {
			t.Fatal(err)
		}
		c.logic = append(c.logic, p)
		c.cleanup = append(c.cleanup, func() { p.Stop() })
		addrs, zones = append(addrs, p.Addr()), append(zones, zone)
	}
	if _, err := routing.UpdateFile(c.path, func(t *routing.Table) error {
		u, _ := t.Unit(c.unit)
		u.LogicAddrs, u.LogicZones, u.Available, u.AcceptNew = addrs, zonesOf(addrs, zones), true, true
		if o.secondShard {
			t.Directory = routing.SplitBuckets([]routing.ShardID{1, 2})
			t.Directory.Shards[1].LogicAddrs = shard2Addrs
		} else {
			t.Directory = routing.SplitBuckets([]routing.ShardID{1})
		}
		t.Directory.Shards[0].LogicAddrs = shardAddrs
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	opts := routing.DefaultOptions()
	opts.PollInterval, opts.Logger = 50*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil))
	var err error
	if c.routes, err = routing.OpenFile(c.path, opts); err != nil {
		t.Fatal(err)
	}
	if c.topology, err = routing.OpenTopologyFile(routing.TopologyPath(c.path), opts); err != nil {
		t.Fatal(err)
	}
	c.admin = &admin.Admin{Routes: c.routes, Topology: c.topology, Passwords: c.set.Passwords(), Who: "e2e"}

	c.mchid = "1900000001"
	creds := &proxy.Credentials{Merchants: []proxy.Merchant{{Mchid: c.mchid, APIKey: "key-" + uniq("ha") + "-0123456789"}}}
	// The proxy logs every refused call of the failing unit: the figures
	// the tests print tell more.
	c.proxy = proxyd.NewMain()
	c.proxy.Config.Listen, c.proxy.Config.Proxy.UnitTimeout = "127.0.0.1:0", 2*time.Second
	c.proxy.Routes, c.proxy.Credentials, c.proxy.Logger = c.routes, creds, slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := c.proxy.Run(ctx); err != nil {
		t.Fatal(err)
	}
	c.api = &client{t: t, base: c.proxy.URL(), key: creds.Merchants[0].APIKey, http: &http.Client{Timeout: 30 * time.Second}}
	c.waitServing(30 * time.Second)
	if err := cluster.WaitHolding(ctx, c.routes.Current().Directory); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *haCluster) close() {
	if c.t.Failed() {
		for _, p := range slices.Concat(c.logic, c.shard, c.shard2) {
			if data, err := os.ReadFile(p.LogPath()); err == nil {
				c.t.Logf("%s log (tail):\n%s", p.Name, tail(string(data), 40))
			}
		}
	}
	if c.proxy != nil {
		c.proxy.Close()
	}
	for i := len(c.cleanup) - 1; i >= 0; i-- {
		c.cleanup[i]()
	}
	for _, f := range []interface{ Close() error }{c.routes, c.topology} {
		if f != nil {
			f.Close()
		}
	}
}

// waitServing waits until every logic service of the replicated unit,
// and every service of the directory shards, reports SERVING: its primary
// is open, writable and acknowledged.
func (c *haCluster) waitServing(timeout time.Duration) {
	c.t.Helper()
	for _, p := range c.logic {
		rc, err := rpc.Dial(p.Addr())
		if err != nil {
			c.t.Fatal(err)
		}
		waitFor(c.t, timeout, p.Name+" serving", func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			return rc.Check(ctx) == nil
		})
		rc.Close()
	}
	for _, p := range slices.Concat(c.shard, c.shard2) {
		h := dialShardHealth(c.t, p.Addr())
		waitFor(c.t, timeout, p.Name+" serving", func() bool { return h.serving() == nil })
		h.close()
	}
}

// shardHealth asks a directory shard service's gRPC health service about
// the directory service.
type shardHealth struct {
	conn *grpc.ClientConn
	h    healthpb.HealthClient
}

func dialShardHealth(t *testing.T, addr string) *shardHealth {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	return &shardHealth{conn: conn, h: healthpb.NewHealthClient(conn)}
}

// serving returns nil when the service reports SERVING, else why not.
func (s *shardHealth) serving() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	r, err := s.h.Check(ctx, &healthpb.HealthCheckRequest{Service: rpc.DirectoryServiceName})
	if err != nil {
		return err
	}
	if r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return errors.New(r.GetStatus().String())
	}
	return nil
}

func (s *shardHealth) close() { s.conn.Close() }

// storage returns the replicated unit's storage in the topology now.
func (c *haCluster) storage() routing.Storage {
	u, _ := c.topology.Current().Unit(c.unit)
	return u.Storage
}

// waitNewPrimary waits until the storage topology names a primary of the
// replicated unit other than old.
func (c *haCluster) waitNewPrimary(timeout time.Duration, old dsn.DSN) {
	c.t.Helper()
	waitFor(c.t, timeout, "a new primary in the storage topology", func() bool {
		st := c.storage()
		return st.HasPrimary() && st.Primary != old
	})
}

// instance returns the set's server of a storage DSN.
func (c *haCluster) instance(dsn dsn.DSN) *localdb.Instance {
	for _, in := range c.set.Instances {
		if storageDSN(in, c.db) == dsn {
			return in
		}
	}
	c.t.Fatalf("no instance has DSN %s", dsn)
	return nil
}

// createOn creates orders until one lands on unit u, and returns it.
func (c *haCluster) createOn(u tradeunit.UnitID, prefix string) response {
	c.t.Helper()
	for i := 0; i < 200; i++ {
		r := c.api.call("POST", "/v3/orders", createBody(uniq(fmt.Sprintf("%s-%d", prefix, i)), 100))
		want(c.t, "create", r, 200, "")
		if unitOf(r) == u {
			return r
		}
	}
	c.t.Fatalf("no create landed on unit %d in 200 tries", u)
	return response{}
}

// rootExec runs a statement as root on in.
func rootExec(t *testing.T, in *localdb.Instance, q string) {
	t.Helper()
	db, err := sql.Open("mysql", in.RootDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, q); err != nil {
		t.Fatalf("%s: %s: %v", in.Name, q, err)
	}
}

// appWrite writes a row through the application user on in and returns
// the error: read_only fences it.
func appWrite(in *localdb.Instance, db string) error {
	h, err := sql.Open("mysql", in.AppDSN(db)+"?timeout=2s")
	if err != nil {
		return err
	}
	defer h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err = h.ExecContext(ctx, "UPDATE sequences SET next_value = next_value + 1 WHERE name = 'order'")
	return err
}

// isReadOnly reports whether err is MariaDB's refusal of a write on a
// read-only server (ER_OPTION_PREVENTS_STATEMENT).
func isReadOnly(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1290
}

// primaryWatch polls @@read_only on every server of a set at once, every
// few milliseconds, and counts the rounds in which more than one server
// was writable: a unit's storage must never have two writable primaries.
type primaryWatch struct {
	stop   chan struct{}
	done   chan struct{}
	rounds atomic.Int64
	double atomic.Int64
	mu     sync.Mutex
	first  string // the first double round, described
}

func watchPrimaries(t *testing.T, set *localdb.Set) *primaryWatch {
	t.Helper()
	w := &primaryWatch{stop: make(chan struct{}), done: make(chan struct{})}
	dbs := make([]*sql.DB, len(set.Instances))
	for i, in := range set.Instances {
		db, err := sql.Open("mysql", in.RootDSN()+"?timeout=200ms")
		if err != nil {
			t.Fatal(err)
		}
		db.SetMaxOpenConns(1)
		dbs[i] = db
	}
	go func() {
		defer close(w.done)
		defer func() {
			for _, db := range dbs {
				db.Close()
			}
		}()
		writable := make([]bool, len(dbs))
		for {
			select {
			case <-w.stop:
				return
			default:
			}
			var wg sync.WaitGroup
			for i, db := range dbs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
					defer cancel()
					var ro bool
					writable[i] = db.QueryRowContext(ctx, "SELECT @@global.read_only").Scan(&ro) == nil && !ro
				}()
			}
			wg.Wait()
			w.rounds.Add(1)
			n := 0
			for _, ok := range writable {
				if ok {
					n++
				}
			}
			if n > 1 {
				if w.double.Add(1) == 1 {
					w.mu.Lock()
					w.first = fmt.Sprintf("writable: %v at %s", writable, time.Now().Format("15:04:05.000"))
					w.mu.Unlock()
				}
			}
			time.Sleep(2 * time.Millisecond) // the watch's pace
		}
	}()
	return w
}

// halt stops the watch and returns its rounds and double rounds.
func (w *primaryWatch) halt() (rounds, double int64, first string) {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.rounds.Load(), w.double.Load(), w.first
}

// check halts the watch and fails the test if two servers were ever
// writable at once.
func (w *primaryWatch) check(t *testing.T) {
	t.Helper()
	rounds, double, first := w.halt()
	t.Logf("fencing: %d polls of read_only on the three servers, %d with two writable", rounds, double)
	if double > 0 {
		t.Errorf("two writable primaries in %d of %d polls (first: %s)", double, rounds, first)
	}
}

// settlePaysAndVerify repeats each pay that got no acknowledgement (with
// its payment id: idempotent) until it gets one, so that every order's
// state is known, then checks every acknowledged order (verifyLedger).
func settlePaysAndVerify(t *testing.T, c *haCluster, orders []*haOrder) {
	t.Helper()
	for _, o := range orders {
		for deadline := time.Now().Add(10 * time.Second); o.payPending; {
			r := c.api.call("POST", "/v3/orders/"+o.no+"/pay", map[string]any{"payment_id": "pay-" + o.no})
			if r.status == 200 {
				o.state, o.payPending = tradeunit.TradeState(r.str("trade_state")), false
			} else if time.Now().After(deadline) {
				t.Fatalf("pay %s after recovery: %d %v", o.no, r.status, r.body)
			}
		}
	}
	verifyLedger(t, c, orders)
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
