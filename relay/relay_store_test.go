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

// verify checks what the bus was given against the outbox: every event
// published at least once and nothing else, each order's events first
// published in increasing version, and no successful cursor save past an
// event not yet published when it was made. It returns the problems found.
func verify(events []tradeunit.Event, published []tradeunit.OrderEvent, saves []save) []string {
	var problems []string
	first := map[int64]int{} // event id → index of its first publication
	for i, e := range published {
		if _, ok := first[e.Seq]; !ok {
			first[e.Seq] = i
		}
	}
	inOutbox := map[int64]bool{}
	for _, e := range events {
		inOutbox[e.ID] = true
		if _, ok := first[e.ID]; !ok {
			problems = append(problems, fmt.Sprintf("event %d never published", e.ID))
		}
	}
	last := map[string]int64{} // order → the version of its latest event first published
	for i, e := range published {
		if !inOutbox[e.Seq] {
			problems = append(problems, fmt.Sprintf("published event %d is not in the outbox", e.Seq))
		}
		if first[e.Seq] != i {
			continue
		}
		if v, ok := last[e.Order.OrderNo]; ok && e.Order.Version <= v {
			problems = append(problems, fmt.Sprintf("order %s: version %d (event %d) published after version %d",
				e.Order.OrderNo, e.Order.Version, e.Seq, v))
		}
		last[e.Order.OrderNo] = e.Order.Version
	}
	for _, s := range saves {
		if s.err != nil {
			continue
		}
		for _, e := range events {
			if e.ID > s.cursor {
				break
			}
			if i, ok := first[e.ID]; !ok || i >= s.published {
				problems = append(problems, fmt.Sprintf("cursor %d saved before event %d was published", s.cursor, e.ID))
				break
			}
		}
	}
	return problems
}

func checkInvariants(t *testing.T, st storage, log *busLog, spies ...*spyStore) []tradeunit.Event {
	t.Helper()
	events := outbox(t, st.store)
	var saves []save
	for _, s := range spies {
		ss, _ := s.recorded()
		saves = append(saves, ss...)
	}
	for _, p := range verify(events, log.snapshot(), saves) {
		t.Error(p)
	}
	return events
}

// follower is a reader of the outbox under test: the relay, or the naive
// one that shows the invariant checks able to fail.
type follower struct {
	log *busLog
	// held reports whether the follower has got far enough for the held
	// transaction to end: past its event on MariaDB.
	held func(heldID int64) bool
}

// holdAgainstWriters holds a raw transaction with one event while 8
// goroutines create and pay orders through the store, until f.held says the
// follower read past it, then commits or rolls it back and waits for the
// writers. It returns the held event's id and order. On SQLite the writers wait for
// the held transaction (one writer at a time): it is held until all have
// begun, and until the follower has everything committed before it.
func holdAgainstWriters(t *testing.T, st storage, f follower, commit bool) (int64, string) {
	t.Helper()
	mustCreateAndPay(t, st.store, 3)
	before := outbox(t, st.store)
	waitFor(t, 10*time.Second, "the events before the held transaction published", func() bool { return f.log.has(before) })

	tx, held, heldOrder := beginHeld(t, st.db)
	const writers, perWriter = 8, 5
	var (
		wg      sync.WaitGroup
		started atomic.Int32
	)
	for range writers {
		orders := make([]*tradeunit.Order, perWriter)
		for i := range orders {
			orders[i] = newOrder(t)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			started.Add(1)
			if err := createAndPay(context.Background(), st.store, orders); err != nil {
				t.Error(err)
			}
		}()
	}
	if st.mysql {
		wg.Wait()
		waitFor(t, 20*time.Second, fmt.Sprintf("the follower past held event %d", held), func() bool { return f.held(held) })
	} else {
		waitFor(t, 10*time.Second, "every writer begun", func() bool { return started.Load() == writers })
	}
	end := tx.Rollback
	if commit {
		end = tx.Commit
	}
	if err := end(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	return held, heldOrder
}

// relayPastHeld: the relay published events numbered after the held one
// and has kept its gap open for several GapSettles: it asked which writers
// may fill it, and polled them again and again.
func relayPastHeld(t *testing.T, r *running) func(int64) bool {
	return func(held int64) bool {
		return r.pub.log.maxSeq() > held && r.metric(t, "tradeunit_relay_oldest_gap_seconds") >= (5*settle).Seconds()
	}
}

// TestRelayHeldTransaction: a transaction that numbers an event and commits
// after many later ones; the relay publishes every event, each order's in
// order, and its cursor waits for the late one. Rolled back, the cursor
// moves past its gap once its writer has ended.
func TestRelayHeldTransaction(t *testing.T) {
	for _, commit := range []bool{true, false} {
		name := map[bool]string{true: "Commits", false: "RollsBack"}[commit]
		t.Run(name, func(t *testing.T) {
			eachStorage(t, func(t *testing.T, st storage) {
				log := &busLog{}
				r := startRelay(t, st.store, "a", &recorder{log: log})
				held, heldOrder := holdAgainstWriters(t, st, follower{log: log, held: relayPastHeld(t, r)}, commit)
				events := outbox(t, st.store)
				lastID := events[len(events)-1].ID
				waitFor(t, 20*time.Second, fmt.Sprintf("cursor at the last event %d", lastID), func() bool {
					return log.has(events) && r.metric(t, "tradeunit_relay_cursor") == float64(lastID)
				})
				// SQLite numbers again what a rollback left: look for the
				// held order, not its number.
				if got := slices.ContainsFunc(events, func(e tradeunit.Event) bool { return e.OrderNo == heldOrder }); got != commit {
					t.Fatalf("held event %d of order %s in the outbox: got %v, want %v", held, heldOrder, got, commit)
				}
				r.stop(t)
				checkInvariants(t, st, log, r.spy)
				// Stopped, the relay released its lease: another holder
				// takes it at once, with the cursor it saved.
				c, err := st.store.AcquireRelay(context.Background(), "events", "b", leaseTTL, time.Now())
				if err != nil || c != lastID {
					t.Fatalf("AcquireRelay after the relay stopped: got %d, %v; want %d", c, err, lastID)
				}
			})
		})
	}
}

// TestNaiveFollowerSkipsLateCommit: a follower that only reads after the
// highest id it saw misses the event of a transaction that commits late,
// and verify says so: the checks above can fail. SQLite has one writer at
// a time, so no commit is late there.
func TestNaiveFollowerSkipsLateCommit(t *testing.T) {
	st := mysqlStorage(t)
	log := &busLog{}
	var (
		highest, reads atomic.Int64
		mu             sync.Mutex
		saves          []save
	)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			page, err := st.store.Events(ctx, highest.Load(), 100)
			if err != nil {
				if ctx.Err() == nil {
					t.Error(err)
				}
				return
			}
			reads.Add(1)
			if len(page) == 0 {
				time.Sleep(5 * time.Millisecond) // idle, as the relay is
				continue
			}
			out := make([]tradeunit.OrderEvent, len(page))
			for i, e := range page {
				if out[i], err = e.OrderEvent(unit); err != nil {
					t.Error(err)
					return
				}
			}
			log.add(out)
			highest.Store(page[len(page)-1].ID)
			mu.Lock()
			saves = append(saves, save{cursor: highest.Load(), published: log.len()})
			mu.Unlock()
		}
	}()
	held, _ := holdAgainstWriters(t, st, follower{log: log, held: func(h int64) bool { return log.maxSeq() > h }}, true)
	events := outbox(t, st.store)
	lastID := events[len(events)-1].ID
	// Two reads that began after the commit: the follower has seen all it
	// ever will.
	after := reads.Load()
	waitFor(t, 10*time.Second, "the naive follower caught up", func() bool {
		return highest.Load() == lastID && reads.Load() >= after+2
	})
	cancel()
	<-done

	mu.Lock()
	problems := verify(events, log.snapshot(), saves)
	mu.Unlock()
	for _, want := range []string{
		fmt.Sprintf("event %d never published", held),
		fmt.Sprintf("before event %d was published", held),
	} {
		if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, want) }) {
			t.Errorf("verify of the naive follower: got %q, want a problem %q", problems, want)
		}
	}
}

// TestRelayLease: of two relays on one unit, one publishes at a time. One
// that stops renewing (blocked in Publish) is taken over after its lease
// expires and cannot move the cursor when it wakes; one stopped cleanly
// hands over at once; nothing is lost either way.
func TestRelayLease(t *testing.T) {
	eachStorage(t, func(t *testing.T, st storage) {
		log := &busLog{}
		mustCreateAndPay(t, st.store, 2)
		a := startRelay(t, st.store, "a", &recorder{log: log})
		waitFor(t, 10*time.Second, "relay a leads", func() bool { return a.leader(t) })
		first := outbox(t, st.store)
		waitFor(t, 10*time.Second, "relay a publishes and saves the outbox", func() bool {
			return log.has(first) && storedCursor(t, st.db) == first[len(first)-1].ID
		})

		b := startRelay(t, st.store, "b", &recorder{log: log})
		waitFor(t, 10*time.Second, "relay b refused the lease twice", func() bool {
			_, refused := b.spy.recorded()
			return refused >= 2
		})
		if calls, _, _ := b.pub.stats(); calls != 0 || b.leader(t) || !a.leader(t) {
			t.Fatalf("while a leads: b published %d times, leaders a %v b %v; want 0, a only", calls, a.leader(t), b.leader(t))
		}

		// a stops renewing: blocked in Publish with the next events.
		releaseA, releaseB := a.pub.block(), b.pub.block()
		mustCreateAndPay(t, st.store, 2)
		waitFor(t, 10*time.Second, "relay a blocked in Publish", func() bool { _, _, blocked := a.pub.stats(); return blocked > 0 })
		blockedAt := time.Now()
		waitFor(t, 10*time.Second, "relay b takes over", func() bool { return b.leader(t) })
		// a renewed at most a third of the TTL before it blocked.
		if took := time.Since(blockedAt); took < leaseTTL/2 {
			t.Fatalf("b took over %s after a blocked, want no sooner than its lease could expire (%s)", took, leaseTTL/2)
		}
		waitFor(t, 10*time.Second, "relay b blocked in Publish", func() bool { _, _, blocked := b.pub.stats(); return blocked > 0 })
		stored := storedCursor(t, st.db)
		releaseA()
		waitFor(t, 10*time.Second, "relay a's late save", func() bool {
			saves, _ := a.spy.recorded()
			return saves[len(saves)-1].err != nil
		})
		saves, _ := a.spy.recorded()
		late := saves[len(saves)-1]
		if !tradeunit.IsCode(late.err, tradeunit.CodeLeaseHeld) {
			t.Fatalf("a's save after the takeover: got %v, want LEASE_HELD", late.err)
		}
		if got := storedCursor(t, st.db); got != stored || late.cursor <= stored {
			t.Fatalf("cursor after a's refused save of %d: got %d, want %d unmoved", late.cursor, got, stored)
		}
		waitFor(t, 10*time.Second, "relay a gives up leading", func() bool { return !a.leader(t) })
		aCalls, _, _ := a.pub.stats()

		releaseB()
		second := outbox(t, st.store)
		waitFor(t, 10*time.Second, "relay b publishes and saves the outbox", func() bool {
			return log.has(second) && storedCursor(t, st.db) == second[len(second)-1].ID
		})
		if calls, _, _ := a.pub.stats(); calls != aCalls {
			t.Fatalf("a published %d times while b led, want none", calls-aCalls)
		}

		// b stopped cleanly: it releases, and a takes over without
		// waiting for the lease to expire.
		b.stop(t)
		stoppedAt := time.Now()
		waitFor(t, 10*time.Second, "relay a leads again", func() bool { return a.leader(t) })
		if took := time.Since(stoppedAt); took >= leaseTTL/2 {
			t.Fatalf("a took over %s after b stopped, want sooner than the lease could expire (%s)", took, leaseTTL/2)
		}
		mustCreateAndPay(t, st.store, 2)
		third := outbox(t, st.store)
		waitFor(t, 10*time.Second, "relay a publishes and saves the outbox", func() bool {
			return log.has(third) && storedCursor(t, st.db) == third[len(third)-1].ID
		})
		a.stop(t)
		checkInvariants(t, st, log, a.spy, b.spy)
	})
}

// TestRelayRetriesPublish: a bus that refuses the first three batches gets
// every event in the end, and the cursor waits for it.
func TestRelayRetriesPublish(t *testing.T) {
	eachStorage(t, func(t *testing.T, st storage) {
		log := &busLog{}
		mustCreateAndPay(t, st.store, 3)
		pub := &recorder{log: log, failNext: 3}
		r := startRelay(t, st.store, "a", pub)
		events := outbox(t, st.store)
		lastID := events[len(events)-1].ID
		waitFor(t, 10*time.Second, "every event published and the cursor saved", func() bool {
			return log.has(events) && storedCursor(t, st.db) == lastID
		})
		r.stop(t)
		if _, failed, _ := pub.stats(); failed != 3 {
			t.Fatalf("refused publishes: got %d, want 3", failed)
		}
		if got := r.metric(t, "tradeunit_relay_failures_total"); got < 3 {
			t.Fatalf("relay failures: got %v, want at least 3", got)
		}
		saves, _ := r.spy.recorded()
		for _, s := range saves {
			if s.err == nil && s.published == 0 {
				t.Fatalf("cursor %d saved before anything was published", s.cursor)
			}
		}
		checkInvariants(t, st, log, r.spy)
	})
}
