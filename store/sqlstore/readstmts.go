package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// maxReadStmts bounds readStmts: its queries are a handful of fixed texts.
const maxReadStmts = 32

// readStmts holds the point reads served most (an order by its number or
// by the merchant's, a refund), prepared on SQLite's read pool: parsing
// the SELECT was a third of a unit's CPU per query (sqlite3Prepare). A
// statement of the pool is prepared once on each connection it runs on and
// kept there, and the read pool keeps its connections open (sqldb). MySQL
// has none (db nil): its driver interpolates arguments in one round trip,
// where a prepared statement would cost one more.
//
// A nil *readStmts prepares nothing. The methods are safe for concurrent
// use.
type readStmts struct {
	db *sql.DB // the read pool; nil: none

	mu     sync.Mutex
	stmts  map[string]*sql.Stmt // by query text
	closed bool
}

func newReadStmts(db *sql.DB) *readStmts {
	return &readStmts{db: db, stmts: make(map[string]*sql.Stmt)}
}

// queryRow runs query, prepared if it can be, else on fallback (the read
// pool, or MySQL's).
func (r *readStmts) queryRow(ctx context.Context, fallback *sql.DB, query string, args ...any) *sql.Row {
	if st := r.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return fallback.QueryRowContext(ctx, query, args...)
}

// stmt returns query's statement, preparing it the first time; nil when
// there is no cache, it is full or closed, or the prepare failed (the
// query then runs unprepared, and is prepared again next time).
func (r *readStmts) stmt(ctx context.Context, query string) *sql.Stmt {
	if r == nil || r.db == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if st := r.stmts[query]; st != nil || r.closed || len(r.stmts) >= maxReadStmts {
		return st
	}
	// Under the lock: a few fixed texts, each prepared once, on a pool
	// whose other connections serve reads meanwhile.
	st, err := r.db.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	r.stmts[query] = st
	return st
}

func (r *readStmts) close() error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	var err error
	for q, st := range r.stmts {
		err = errors.Join(err, st.Close())
		delete(r.stmts, q)
	}
	return err
}
