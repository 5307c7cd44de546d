package relay_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"tradeunit"
	"tradeunit/dsn"
	"tradeunit/orderno"
	"tradeunit/relay"
	"tradeunit/store/sqlstore"
	"tradeunit/store/storetest"
)

// These tests run the relay against real storage, SQLite and MariaDB, with
// the outbox written by the store itself and by raw transactions held open
// beside it, and end with invariant checks (verify) over everything the bus
// was given: every event published, each order's events in order, and no
// stored cursor past an event not yet published.

const (
	unit     tradeunit.UnitID = 7
	mch                       = "1900000001"
	leaseTTL                  = time.Second
	settle                    = 200 * time.Millisecond
)

// storage is one unit's storage under test: its store and a raw handle on
// the same database, for transactions of the test's own.
type storage struct {
	store *sqlstore.Store
	db    *sql.DB
	mysql bool // many writers at once: events may commit out of id order
}

// eachStorage runs fn on a fresh SQLite file and a fresh MariaDB database.
func eachStorage(t *testing.T, fn func(t *testing.T, st storage)) {
	t.Run("SQLite", func(t *testing.T) { fn(t, sqliteStorage(t)) })
	t.Run("MariaDB", func(t *testing.T) { fn(t, mysqlStorage(t)) })
}

func sqliteStorage(t *testing.T) storage {
	t.Helper()
	path := filepath.Join(t.TempDir(), "unit.db")
	s := openStore(t, dsn.MustParse("sqlite:"+path))
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return storage{store: s, db: db}
}

func mysqlStorage(t *testing.T) storage {
	t.Helper()
	d := storetest.NewMySQLDatabase(t)
	s := openStore(t, d)
	cfg, err := d.MySQLConfig(storetest.TestPasswords())
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return storage{store: s, db: db, mysql: true}
}

func openStore(t *testing.T, d dsn.DSN) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(context.Background(), d, storetest.TestPasswords())
	if err != nil {
		t.Fatalf("open %s: %v", d, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var orderSeq atomic.Uint64

// newOrder returns an unsaved NOTPAY order with a fresh order number.
func newOrder(t *testing.T) *tradeunit.Order {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	n, err := orderno.New(unit, now, orderSeq.Add(1))
	if err != nil {
		t.Fatal(err)
	}
	return &tradeunit.Order{OrderNo: n.String(), Mchid: mch, OutTradeNo: "out-" + n.String()[16:],
		Description: "relay", Amount: tradeunit.Amount{Total: 100, Currency: "CNY"}, CreateTime: now}
}

// createAndPay makes n orders through the store, each created then paid:
// two events per order, the second waiting on the first's row lock.
func createAndPay(ctx context.Context, s *sqlstore.Store, orders []*tradeunit.Order) error {
	for _, o := range orders {
		if _, created, err := s.CreateOrder(ctx, o); err != nil || !created {
			return fmt.Errorf("create %s: created %v, %v", o.OrderNo, created, err)
		}
		if _, err := s.PayOrder(ctx, o.Mchid, o.OrderNo, "pay-"+o.OrderNo, time.Now()); err != nil {
			return fmt.Errorf("pay %s: %w", o.OrderNo, err)
		}
	}
	return nil
}

func mustCreateAndPay(t *testing.T, s *sqlstore.Store, n int) {
	t.Helper()
	orders := make([]*tradeunit.Order, n)
	for i := range orders {
		orders[i] = newOrder(t)
	}
	if err := createAndPay(context.Background(), s, orders); err != nil {
		t.Fatal(err)
	}
}

// beginHeld opens a raw transaction that writes an order and its
// ORDER_CREATED event as the store does (the payload is the order's
// snapshot), and holds it; it returns the transaction, the event's id and
// the order's number.
func beginHeld(t *testing.T, db *sql.DB) (*sql.Tx, int64, string) {
	t.Helper()
	o := newOrder(t)
	body, err := json.Marshal(struct {
		Order tradeunit.EventOrder `json:"order"`
	}{tradeunit.NewEventOrder(&tradeunit.Order{OrderNo: o.OrderNo, Mchid: o.Mchid, OutTradeNo: o.OutTradeNo,
		Description: o.Description, Amount: o.Amount, State: tradeunit.StateNotPay, CreateTime: o.CreateTime,
		UpdateTime: o.CreateTime}, 1)})
	if err != nil {
		t.Fatal(err)
	}
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback() })
	at := tradeunit.UnixMicros(o.CreateTime)
	if _, err := tx.Exec(`INSERT INTO orders (order_no, mchid, out_trade_no, description, total, currency,
		trade_state, abandoned_units, create_time, update_time, attempt, version) VALUES (?, ?, ?, ?, ?, ?, ?, '', ?, ?, 0, 1)`,
		o.OrderNo, o.Mchid, o.OutTradeNo, o.Description, o.Amount.Total, o.Amount.Currency, string(tradeunit.StateNotPay), at, at); err != nil {
		t.Fatal(err)
	}
	res, err := tx.Exec("INSERT INTO order_events (order_no, event_type, payload, create_time) VALUES (?, ?, ?, ?)",
		o.OrderNo, string(tradeunit.EventOrderCreated), string(body), at)
	if err != nil {
		t.Fatal(err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		t.Fatal(err)
	}
	return tx, id, o.OrderNo
}

// outbox returns every event of the store's outbox but the probe
// merchant's, which the relay does not publish.
func outbox(t *testing.T, s *sqlstore.Store) []tradeunit.Event {
	t.Helper()
	var out []tradeunit.Event
	for after := int64(0); ; {
		page, err := s.Events(context.Background(), after, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return out
		}
		for _, e := range page {
			oe, err := e.OrderEvent(unit)
			if err != nil {
				t.Fatalf("outbox event %d: %v", e.ID, err)
			}
			if oe.Order.Mchid != tradeunit.ProbeMchid {
				out = append(out, e)
			}
		}
		after = page[len(page)-1].ID
	}
}

// storedCursor reads the relay's cursor from its lease row, without taking
// the lease (0: never saved).
func storedCursor(t *testing.T, db *sql.DB) int64 {
	t.Helper()
	var c int64
	err := db.QueryRow("SELECT `cursor` FROM relay_leases WHERE name = 'events'").Scan(&c)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		t.Fatal(err)
	}
	return c
}

// waitFor polls cond until it holds, failing the test after timeout: a wait
// for a state, never for a time.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// busLog is everything the bus was given, in the order it was given,
// repeats included; relays of one unit share one.
type busLog struct {
	mu     sync.Mutex
	events []tradeunit.OrderEvent
}

func (l *busLog) add(events []tradeunit.OrderEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, events...)
}

func (l *busLog) snapshot() []tradeunit.OrderEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

func (l *busLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.events)
}

// has reports whether every event of want was published.
func (l *busLog) has(want []tradeunit.Event) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	seen := make(map[int64]bool, len(l.events))
	for _, e := range l.events {
		seen[e.Seq] = true
	}
	for _, e := range want {
		if !seen[e.ID] {
			return false
		}
	}
	return true
}

// maxSeq returns the highest event id published (0: none).
func (l *busLog) maxSeq() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var m int64
	for _, e := range l.events {
		m = max(m, e.Seq)
	}
	return m
}

var errBus = errors.New("bus refused the batch")

// recorder is a Publisher that appends what it is given to a busLog. It
// can be told to fail its next calls, or to block them until released.
type recorder struct {
	log *busLog

	mu       sync.Mutex
	failNext int
	calls    int
	failed   int
	gate     chan struct{} // non-nil: calls wait for it to close
	blocked  int           // calls that waited on a gate
}

func (r *recorder) Publish(ctx context.Context, events []tradeunit.OrderEvent) error {
	r.mu.Lock()
	r.calls++
	if r.failNext > 0 {
		r.failNext--
		r.failed++
		r.mu.Unlock()
		return errBus
	}
	gate := r.gate
	if gate != nil {
		r.blocked++
	}
	r.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r.log.add(events)
	return nil
}

// block makes the next calls wait until release is called.
func (r *recorder) block() (release func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	gate := make(chan struct{})
	r.gate = gate
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.gate = nil
		close(gate)
	}
}

func (r *recorder) stats() (calls, failed, blocked int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls, r.failed, r.blocked
}

// save is one SaveRelayCursor call: the cursor, its outcome, and how many
// events the bus had been given when it was made.
type save struct {
	cursor    int64
	err       error
	published int
}

// spyStore is the store as one relay sees it, recording its cursor saves
// and the lease acquisitions refused to it.
type spyStore struct {
	*sqlstore.Store
	log *busLog

	mu      sync.Mutex
	saves   []save
	refused int
}

func (s *spyStore) SaveRelayCursor(ctx context.Context, name, holder string, cursor int64, now time.Time) error {
	n := s.log.len() // before the save: what was published when the cursor moved
	err := s.Store.SaveRelayCursor(ctx, name, holder, cursor, now)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.saves = append(s.saves, save{cursor: cursor, err: err, published: n})
	return err
}

func (s *spyStore) AcquireRelay(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (int64, error) {
	c, err := s.Store.AcquireRelay(ctx, name, holder, ttl, now)
	if tradeunit.IsCode(err, tradeunit.CodeLeaseHeld) {
		s.mu.Lock()
		s.refused++
		s.mu.Unlock()
	}
	return c, err
}

func (s *spyStore) recorded() ([]save, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.saves), s.refused
}

// running is a relay running in a goroutine.
type running struct {
	holder string
	pub    *recorder
	spy    *spyStore
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// startRelay runs a relay of the unit's outbox in s as holder, publishing
// to pub; it is stopped when the test ends, if not before.
func startRelay(t *testing.T, s *sqlstore.Store, holder string, pub *recorder) *running {
	t.Helper()
	cfg := relay.DefaultConfig(unit)
	cfg.Holder, cfg.LeaseTTL, cfg.Idle, cfg.Retry, cfg.GapSettle = holder, leaseTTL, 5*time.Millisecond, 20*time.Millisecond, settle
	reg := prometheus.NewRegistry()
	spy := &spyStore{Store: s, log: pub.log}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rl, err := relay.New(cfg, tradeunit.FixedStorage(spy), pub, log, relay.NewMetrics(reg))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{holder: holder, pub: pub, spy: spy, reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- rl.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels the relay's context and waits for Run to return (it gives
// the lease up on the way).
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.once.Do(func() {
		r.cancel()
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("relay %s: Run: %v", r.holder, err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("relay %s: Run did not return after its context ended", r.holder)
		}
	})
}

// metric returns the value of the relay's gauge or counter name.
func (r *running) metric(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		m := mf.GetMetric()[0]
		if g := m.GetGauge(); g != nil {
			return g.GetValue()
		}
		return m.GetCounter().GetValue()
	}
	t.Fatalf("relay %s has no metric %s", r.holder, name)
	return 0
}

func (r *running) leader(t *testing.T) bool { return r.metric(t, "tradeunit_relay_leader") == 1 }

// testWriter sends the relay's log to the test's.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
