package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/go-sql-driver/mysql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"tradeunit"
	"tradeunit/dsn"
	"tradeunit/replication/localdb"
	"tradeunit/store/internal/sqldb"
)

// TestMySQLFaults injects real faults into a MariaDB server of the test's
// own (never the shared one: several faults change its global settings),
// on a unit database per case, through the application user that
// read_only fences; see runFault for what each case asserts.
func TestMySQLFaults(t *testing.T) {
	m := startFaultServer(t)
	tests := []struct {
		name string
		// vars are session variables of the Store's connections.
		vars map[string]string
		// readTimeout bounds each read of the Store's connections.
		readTimeout time.Duration
		// proxied puts a TCP proxy between the Store and the server.
		proxied bool
		inject  func(t *testing.T, f *mysqlFault) (restore func())
		around  func(t *testing.T, f *mysqlFault, call func() error) error
		create  want
		pay     want
		read    want
	}{
		{
			// The driver finds the dead connections before it uses them
			// (it checks an idle connection's liveness) and dials again.
			name: "kill the idle connections", inject: func(t *testing.T, f *mysqlFault) func() {
				f.killApp(t)
				return func() {}
			},
			create: want{written: yes}, pay: want{written: yes},
		},
		{
			// Killed between the last statement and COMMIT: the server
			// rolls back, so nothing is written, but the Store cannot
			// tell that from a COMMIT lost on its way back. The driver
			// reports the dead connection either after sending COMMIT
			// (unknown) or, when the write already fails, as
			// driver.ErrBadConn, which promises nothing was sent
			// (refused): the kernel decides which.
			name: "kill the connection before COMMIT", inject: func(t *testing.T, f *mysqlFault) func() {
				f.store.db.BeforeCommit = func() { f.killApp(t) }
				return func() { f.store.db.BeforeCommit = nil }
			},
			create: want{code: tradeunit.CodeUnitUnavailable, unknown: either, written: no},
			pay:    want{code: tradeunit.CodeUnitUnavailable, unknown: either, written: no},
		},
		{
			// Killed while waiting for a lock: a statement, not COMMIT,
			// lost its connection, so nothing was written.
			name: "kill the connection waiting for a lock", inject: lockOrders, around: killWhenWaiting,
			create: nothingWritten, pay: nothingWritten,
		},
		{
			name: "read-only (fenced)", inject: func(t *testing.T, f *mysqlFault) func() {
				f.root(t, "SET GLOBAL read_only = ON")
				return func() { f.root(t, "SET GLOBAL read_only = OFF") }
			},
			create: nothingWritten, pay: nothingWritten,
		},
		{
			// Past the lock wait timeout on each of inTx's attempts. A
			// timeout of 0 gives up at once, with the same error 1205
			// as a wait past the default 50 s.
			name: "lock held past innodb_lock_wait_timeout", vars: map[string]string{"innodb_lock_wait_timeout": "0"},
			inject: lockOrders,
			create: nothingWritten, pay: nothingWritten,
		},
		{
			name: "too many connections", inject: fillConnections,
			create: nothingWritten, pay: nothingWritten, read: want{code: tradeunit.CodeUnitUnavailable},
		},
		{
			// COMMIT reaches the server, which commits; its answer is
			// black-holed on the way back and the read times out.
			name: "cut the link after COMMIT was sent", proxied: true, readTimeout: time.Second,
			inject: func(t *testing.T, f *mysqlFault) func() {
				f.store.db.BeforeCommit = func() { f.cut(t, "downstream") }
				return func() { f.store.db.BeforeCommit = nil }
			},
			around: healAfter,
			create: want{code: tradeunit.CodeUnitUnavailable, unknown: yes, written: yes},
			pay:    want{code: tradeunit.CodeUnitUnavailable, unknown: yes, written: yes},
		},
		{
			// COMMIT is black-holed on its way to the server: nothing is
			// written, and the Store sees exactly what it saw above.
			name: "cut the link before COMMIT arrives", proxied: true, readTimeout: time.Second,
			inject: func(t *testing.T, f *mysqlFault) func() {
				f.store.db.BeforeCommit = func() { f.cut(t, "upstream") }
				return func() { f.store.db.BeforeCommit = nil }
			},
			around: healAfter,
			create: want{code: tradeunit.CodeUnitUnavailable, unknown: yes, written: no},
			pay:    want{code: tradeunit.CodeUnitUnavailable, unknown: yes, written: no},
		},
		{
			// kill -9: the pooled connections are dead and new ones are
			// refused.
			name: "stop the server", inject: func(t *testing.T, f *mysqlFault) func() {
				if err := f.in.Kill(); err != nil {
					t.Fatal(err)
				}
				return func() { m.restart(t) }
			},
			create: nothingWritten, pay: nothingWritten, read: want{code: tradeunit.CodeUnitUnavailable},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &mysqlFault{faultServer: m, db: fmt.Sprintf("tradeunit_fault_%d", i)}
			d := m.in.AppStorage(f.db)
			var params []string
			for k, v := range tt.vars {
				params = append(params, k+"="+v)
			}
			if tt.readTimeout > 0 {
				params = append(params, "readTimeout="+tt.readTimeout.String())
			}
			passwords := m.set.Passwords()
			if tt.proxied {
				f.link = m.proxy(t)
				d.Addr = f.link.Listen
				// The link is another address: the app user's password is
				// the same, for every server of the set.
			}
			d, err := dsn.Parse(strings.TrimSuffix(d.String()+"?"+strings.Join(params, "&"), "?"))
			if err != nil {
				t.Fatal(err)
			}
			f.store, err = Open(context.Background(), d, passwords)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.store.Close() })
			r := faultRun{store: f.store, create: tt.create, pay: tt.pay, reader: tt.read,
				inject: func() func() { return tt.inject(t, f) }}
			if tt.around != nil {
				r.around = func(call func() error) error { return tt.around(t, f, call) }
			}
			runFault(t, r)
		})
	}
}

// faultServer is the test's MariaDB server: the primary of a localdb set
// whose replica is stopped and whose semi-synchronous wait is off, so that
// a commit waits for nobody and the server can be killed and restarted
// alone.
type faultServer struct {
	set     *localdb.Set
	in      *localdb.Instance
	admin   *sql.DB // root
	proxies *toxiproxy.ApiServer
}

func startFaultServer(t *testing.T) *faultServer {
	t.Helper()
	if err := localdb.Available(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("MariaDB server binaries are required under CI=true: %v", err)
		}
		t.Skip(err)
	}
	// Killed servers and connections are the point: keep the driver quiet.
	mysql.SetLogger(log.New(io.Discard, "", 0))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := localdb.DefaultConfig(t.TempDir())
	cfg.Instances = 2
	set, err := localdb.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start MariaDB: %v", err)
	}
	t.Cleanup(func() { set.Close() })
	m := &faultServer{set: set, in: set.Instances[0],
		proxies: toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())}
	m.admin, err = sql.Open("mysql", m.in.RootDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.admin.Close() })
	m.root(t, "SET GLOBAL rpl_semi_sync_master_enabled = OFF")
	if err := set.Instances[1].Stop(); err != nil {
		t.Fatal(err)
	}
	return m
}

// root runs statements as root.
func (m *faultServer) root(t *testing.T, stmts ...string) {
	t.Helper()
	for _, q := range stmts {
		if _, err := m.admin.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// restart starts the killed server again, writable and without the
// semi-synchronous wait (it always starts read-only).
func (m *faultServer) restart(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := m.in.Start(ctx); err != nil {
		t.Fatal(err)
	}
	m.root(t, "SET GLOBAL rpl_semi_sync_master_enabled = OFF", "SET GLOBAL read_only = OFF")
}

// proxy starts a TCP proxy in front of the server.
func (m *faultServer) proxy(t *testing.T) *toxiproxy.Proxy {
	t.Helper()
	p := toxiproxy.NewProxy(m.proxies, strings.ReplaceAll(t.Name(), "/", "_"), "127.0.0.1:0", m.in.Addr())
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p
}

// appConnections returns the ids of the application user's connections.
func (m *faultServer) appConnections(t *testing.T) []int64 {
	t.Helper()
	rows, err := m.admin.Query("SELECT id FROM information_schema.PROCESSLIST WHERE user = ?", localdb.AppUser)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}

// kill kills connection id and waits until the server has closed it.
func (m *faultServer) kill(t *testing.T, id int64) {
	t.Helper()
	if _, err := m.admin.Exec(fmt.Sprintf("KILL CONNECTION %d", id)); err != nil {
		var me *mysql.MySQLError
		if !errors.As(err, &me) || me.Number != 1094 { // ER_NO_SUCH_THREAD: gone already
			t.Fatalf("kill connection %d: %v", id, err)
		}
	}
	poll(t, 10*time.Second, fmt.Sprintf("connection %d gone", id), func() bool {
		var n int
		if err := m.admin.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE id = ?", id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 0
	})
}

// killApp kills every connection of the application user.
func (m *faultServer) killApp(t *testing.T) {
	t.Helper()
	for _, id := range m.appConnections(t) {
		m.kill(t, id)
	}
}

// mysqlFault is one case's unit database, Store, and TCP proxy if any.
type mysqlFault struct {
	*faultServer
	db    string
	store *Store
	link  *toxiproxy.Proxy
}

// cut black-holes one direction of the link: bytes are dropped, the
// connections stay open.
func (f *mysqlFault) cut(t *testing.T, stream string) {
	doc := fmt.Sprintf(`{"name":"cut_%s","type":"timeout","stream":%q,"attributes":{"timeout":0}}`, stream, stream)
	if _, err := f.link.Toxics.AddToxicJson(strings.NewReader(doc)); err != nil {
		t.Errorf("cut the link: %v", err)
	}
}

// healAfter runs call, then heals the link for the next call.
func healAfter(_ *testing.T, f *mysqlFault, call func() error) error {
	err := call()
	f.link.Toxics.ResetToxics(context.Background())
	return err
}

// lockOrders holds, as root, the locks of every row and gap of the unit's
// orders: an insert and the update of any order wait for them.
func lockOrders(t *testing.T, f *mysqlFault) func() {
	t.Helper()
	tx, err := f.admin.Begin()
	if err != nil {
		t.Fatal(err)
	}
	rows, err := tx.Query("SELECT order_no FROM " + sqldb.QuoteIdent(f.db) + ".orders FOR UPDATE")
	if err != nil {
		tx.Rollback()
		t.Fatal(err)
	}
	rows.Close()
	return func() { tx.Rollback() }
}

// killWhenWaiting runs call and kills its connection once it waits for
// the orders' locks: its INSERT or UPDATE of orders is running (the lock
// holds it there). INNODB_TRX would say so directly, but it is a cache
// that a poll this frequent never lets refresh.
func killWhenWaiting(t *testing.T, f *mysqlFault, call func() error) error {
	done := make(chan error, 1)
	go func() { done <- call() }()
	var id int64
	poll(t, 10*time.Second, "a statement waiting for the orders' locks", func() bool {
		err := f.admin.QueryRow(`SELECT id FROM information_schema.PROCESSLIST
			WHERE user = ? AND command = 'Query' AND (info LIKE 'INSERT INTO orders %' OR info LIKE 'UPDATE orders %')`,
			localdb.AppUser).Scan(&id)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			t.Fatal(err)
		}
		return err == nil
	})
	f.kill(t, id)
	return <-done
}

// fillConnections lowers max_connections and takes every connection the
// server then has left, after killing the Store's idle ones: the Store
// must dial, and the server refuses it.
func fillConnections(t *testing.T, f *mysqlFault) func() {
	t.Helper()
	var was int
	if err := f.admin.QueryRow("SELECT @@global.max_connections").Scan(&was); err != nil {
		t.Fatal(err)
	}
	f.root(t, "SET GLOBAL max_connections = 10")
	f.killApp(t)
	filler, err := sql.Open("mysql", f.in.AppDSN(""))
	if err != nil {
		t.Fatal(err)
	}
	var held []*sql.Conn
	release := func() {
		for _, c := range held {
			c.Close()
		}
		filler.Close()
		f.root(t, fmt.Sprintf("SET GLOBAL max_connections = %d", was))
	}
	for {
		c, err := filler.Conn(context.Background())
		if err == nil {
			held = append(held, c)
			if len(held) > 20 {
				release()
				t.Fatalf("max_connections = 10 let %d connections in", len(held))
			}
			continue
		}
		var me *mysql.MySQLError
		if !errors.As(err, &me) || me.Number != 1040 {
			release()
			t.Fatalf("fill the connections: %v, want error 1040", err)
		}
		return release
	}
}
