package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"sync/atomic"
)

// stmtKind names a statement whose text depends on how many rows it takes:
// a batch's multi-row INSERT or its read of the batch's orders.
type stmtKind uint8

const (
	stmtInsertOrders stmtKind = iota // insertAll's INSERT INTO orders
	stmtInsertEvents                 // insertEvents' INSERT INTO order_events
	stmtLockedOrders                 // lockedOrders' SELECT ... WHERE order_no IN (...)
	stmtSuperseded                   // anySuperseded's SELECT COUNT(*) ... OR ...
	stmtFixed                        // a statement of one text whatever the batch (text)
)

// stmtKey is a statement of the cache: its kind and its number of rows,
// or (stmtFixed) its text, with rows 1.
type stmtKey struct {
	kind stmtKind
	rows int
	text string
}

// fixedKey is the key of a statement whose text is query: those every
// write transaction runs (the freeze fence, a batch's savepoint) and those
// of a single order or change.
func fixedKey(query string) stmtKey { return stmtKey{kind: stmtFixed, rows: 1, text: query} }

const (
	// maxCachedRows is the largest size cached: group commit's batches
	// are a few hundred at most, and a larger one is rare enough to pay
	// its parse.
	maxCachedRows = 256
	// maxCachedStmts bounds the statements the cache holds, every kind
	// counted: past it, a new size runs unprepared.
	maxCachedStmts = 512
)

// stmtCache holds the per-size statements of the batch writes, prepared on
// SQLite's write pool. Parsing them was 7.5% of a create's CPU there
// (sqlite3Prepare), their text being new to the driver each time; the
// pool's one connection keeps a statement prepared, and tx.StmtContext
// reuses it on that connection without preparing again (as dirstore's
// prepared does). MySQL has no cache (db nil): its driver interpolates
// arguments (one round trip per statement), where a prepared statement
// would cost a round trip more.
//
// A size is prepared lazily, but never inside a transaction: the
// transaction holds the pool's only connection, so db.PrepareContext
// would wait for it forever, and tx.PrepareContext's statement closes
// with the transaction. So the first batch of a size runs its statement
// unprepared, as without the cache, and notes the size as wanted; once its
// transaction has ended, prepareWanted (run by inTx, the only way writes
// begin) prepares the wanted sizes on the free pool, and the next batch of
// that size finds its statement.
//
// A nil *stmtCache caches nothing. The methods are safe for concurrent use.
type stmtCache struct {
	db *sql.DB // the write pool; nil: no cache
	// maxRows and maxStmts are maxCachedRows and maxCachedStmts (tests
	// set less).
	maxRows, maxStmts int

	mu     sync.Mutex
	stmts  map[stmtKey]*sql.Stmt
	wanted map[stmtKey]string // missed in a transaction: the query to prepare after it
	closed bool

	// hits and misses count lookups of a cacheable size, for tests;
	// stmtFixed's are not counted.
	hits, misses atomic.Int64
}

// newStmtCache returns a cache preparing on db, SQLite's write pool.
func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, maxRows: maxCachedRows, maxStmts: maxCachedStmts, stmts: make(map[stmtKey]*sql.Stmt), wanted: make(map[stmtKey]string)}
}

// lookup returns the prepared statement of k, or nil: the caller runs
// query() unprepared. A miss of a size the cache may hold notes query()
// for prepareWanted.
func (c *stmtCache) lookup(k stmtKey, query func() string) *sql.Stmt {
	if c == nil || c.db == nil || k.rows < 1 || k.rows > c.maxRows {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	sized := k.kind != stmtFixed
	if st := c.stmts[k]; st != nil {
		if sized {
			c.hits.Add(1)
		}
		return st
	}
	if sized {
		c.misses.Add(1)
	}
	if _, ok := c.wanted[k]; !ok && len(c.stmts)+len(c.wanted) < c.maxStmts {
		c.wanted[k] = query()
	}
	return nil
}

// prepareWanted prepares the statements missed since it last ran. It must
// run outside any transaction of the write pool (see stmtCache). A
// statement that fails to prepare is dropped: its size runs unprepared
// and is wanted again at its next miss.
func (c *stmtCache) prepareWanted(ctx context.Context) {
	if c == nil || c.db == nil {
		return
	}
	c.mu.Lock()
	if len(c.wanted) == 0 || c.closed {
		c.mu.Unlock()
		return
	}
	wanted := c.wanted
	c.wanted = make(map[stmtKey]string)
	c.mu.Unlock()
	// Unlocked while preparing: lookups go on meanwhile, and miss.
	for k, q := range wanted {
		st, err := c.db.PrepareContext(ctx, q)
		if err != nil {
			continue
		}
		c.mu.Lock()
		if c.closed || c.stmts[k] != nil {
			st.Close()
		} else {
			c.stmts[k] = st
		}
		c.mu.Unlock()
	}
}

// exec runs the statement of k in tx: prepared if cached, else query().
func (c *stmtCache) exec(ctx context.Context, tx *sql.Tx, k stmtKey, query func() string, args ...any) (sql.Result, error) {
	if st := c.lookup(k, query); st != nil {
		// st was prepared on the pool's one connection, which is tx's:
		// database/sql reuses it rather than preparing it again (and
		// prepares it anew on a connection it was not prepared on).
		return tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, query(), args...)
}

// query is exec for a statement that returns rows.
func (c *stmtCache) query(ctx context.Context, tx *sql.Tx, k stmtKey, query func() string, args ...any) (*sql.Rows, error) {
	if st := c.lookup(k, query); st != nil {
		return tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return tx.QueryContext(ctx, query(), args...)
}

// queryRow is exec for a statement that returns one row.
func (c *stmtCache) queryRow(ctx context.Context, tx *sql.Tx, k stmtKey, query func() string, args ...any) *sql.Row {
	if st := c.lookup(k, query); st != nil {
		return tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, query(), args...)
}

// execFixed is exec of a statement whose text is query (fixedKey).
func (c *stmtCache) execFixed(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	return c.exec(ctx, tx, fixedKey(query), func() string { return query }, args...)
}

// queryRowFixed is queryRow of a statement whose text is query.
func (c *stmtCache) queryRowFixed(ctx context.Context, tx *sql.Tx, query string, args ...any) *sql.Row {
	return c.queryRow(ctx, tx, fixedKey(query), func() string { return query }, args...)
}

// close closes the cached statements; later lookups miss and note nothing.
func (c *stmtCache) close() error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	var err error
	for k, st := range c.stmts {
		err = errors.Join(err, st.Close())
		delete(c.stmts, k)
	}
	clear(c.wanted)
	return err
}

// len reports how many statements of a batch size (fixed false) or of a
// fixed text the cache holds.
func (c *stmtCache) len(fixed bool) int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for k := range c.stmts {
		if (k.kind == stmtFixed) == fixed {
			n++
		}
	}
	return n
}
