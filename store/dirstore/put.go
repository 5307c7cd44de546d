package dirstore

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"tradeunit"
)

// chunk is the most rows one statement carries: an INSERT of many rows, a
// locking read of many keys, an UPDATE of many rows (13 arguments a row at
// most, well inside SQLite's limit of 32766).
const chunk = 64

const insertColumns = "mchid, kind, value, bucket, state, attempt_unit, attempt_id, fingerprint, record_no, abandoned, created_us, updated_us, version"

const insertRow = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"

const insertOne = "INSERT INTO directory_entries (" + insertColumns + ") VALUES " + insertRow

// updateEntry writes an entry over the one at the version before it. The
// rules of which change is allowed are checkPut's; the version condition
// only guards against a row changed under the transaction's lock, which
// cannot happen.
const updateEntry = `UPDATE directory_entries SET state = ?, attempt_unit = ?, attempt_id = ?, fingerprint = ?,
	record_no = ?, abandoned = ?, created_us = ?, updated_us = ?, version = ?
	WHERE mchid = ? AND kind = ? AND value = ? AND version = ?`

const selectEntry = "SELECT " + columns + " FROM directory_entries WHERE mchid = ? AND kind = ? AND value = ?"

// Put stores each entry if the stored one is at the entry's Version-1 (see
// tradeunit.DirectoryStore), all in one transaction. An invalid entry fails
// alone with PARAM_ERROR; an entry that lost the compare-and-swap fails
// alone with an error wrapping tradeunit.ErrVersionConflict and the entry
// now stored (INVALID_REQUEST), or no entry if none is stored
// (RESOURCE_NOT_EXISTS); if the transaction does not commit, every other
// result carries its error (UNIT_UNAVAILABLE: nothing written, or the
// outcome unknown when COMMIT's answer was lost).
//
// Entries of distinct keys are written in key order, so that concurrent
// transactions take their row locks in one order: new entries many rows
// to an INSERT, changed ones read with a lock and written many to an
// UPDATE on MySQL, one prepared statement each on SQLite. Entries of a key
// that comes more than once are written one by one in the order given,
// each seeing the ones before it.
func (s *Store) Put(ctx context.Context, entries []*tradeunit.DirectoryEntry) []tradeunit.PutResult {
	const op = "dirstore.Put"
	results := make([]tradeunit.PutResult, len(entries))
	var valid []int
	count := make(map[tradeunit.MerchantKey]int, len(entries))
	for i, e := range entries {
		if err := validate(e); err != nil {
			results[i].Err = err
			continue
		}
		valid = append(valid, i)
		count[e.Key]++
	}
	if len(valid) == 0 {
		return results
	}
	var inserts, updates, repeated []int
	for _, i := range valid {
		switch e := entries[i]; {
		case count[e.Key] > 1:
			repeated = append(repeated, i)
		case e.Version == 1:
			inserts = append(inserts, i)
		default:
			updates = append(updates, i)
		}
	}
	byKey := func(a, b int) int { return compareKeys(entries[a].Key, entries[b].Key) }
	slices.SortFunc(inserts, byKey)
	slices.SortFunc(updates, byKey)
	err := s.db.InTx(ctx, op, func(tx *sql.Tx) error {
		for _, i := range valid { // from scratch: InTx may run this again
			results[i] = tradeunit.PutResult{}
		}
		w := &writer{s: s, tx: tx, ctx: ctx, op: op, entries: entries, results: results}
		for rows := range slices.Chunk(inserts, chunk) {
			if err := w.insertMany(rows); err != nil {
				return err
			}
		}
		for rows := range slices.Chunk(updates, chunk) {
			if err := w.updateMany(rows); err != nil {
				return err
			}
		}
		for _, i := range repeated {
			if err := w.put(i); err != nil {
				return err
			}
		}
		return nil
	})
	for _, i := range valid {
		if err != nil {
			results[i] = tradeunit.PutResult{Err: err}
		} else if results[i].Err == nil {
			results[i].Entry = stored(entries[i])
		}
	}
	return results
}

// checkPut is the rule of the directory: whether e may replace cur, the
// entry stored (nil: none). It returns nil, or the conflict.
func checkPut(op string, cur, e *tradeunit.DirectoryEntry) error {
	var why string
	switch {
	case cur == nil && e.Version == 1:
		return nil
	case cur == nil:
		return &tradeunit.Error{Code: tradeunit.CodeNotFound, Op: op, Err: tradeunit.ErrVersionConflict,
			Message: fmt.Sprintf("directory entry %s does not exist (put at version %d)", e.Key, e.Version)}
	case cur.Version != e.Version-1:
		why = fmt.Sprintf("it is at version %d, not %d", cur.Version, e.Version-1)
	case cur.State == tradeunit.EntryPending:
		return nil
	case e.State == cur.State && e.RecordNo == cur.RecordNo && e.Attempt == cur.Attempt && e.Fingerprint == cur.Fingerprint:
		return nil // a committed entry's abandoned list may change
	default:
		why = fmt.Sprintf("it is committed to %s by attempt %d on unit %d, which no Put changes",
			cur.RecordNo, cur.Attempt.ID, cur.Attempt.Unit)
	}
	return &tradeunit.Error{Code: tradeunit.CodeInvalidRequest, Op: op, Err: tradeunit.ErrVersionConflict,
		Message: fmt.Sprintf("directory entry %s changed meanwhile: %s", e.Key, why)}
}

// writer writes one attempt of Put's transaction; it sets the results of
// the entries that conflict (the others are set once it has committed).
type writer struct {
	s       *Store
	tx      *sql.Tx
	ctx     context.Context
	op      string
	entries []*tradeunit.DirectoryEntry
	results []tradeunit.PutResult
}

// conflict records that entry i lost to cur.
func (w *writer) conflict(i int, cur *tradeunit.DirectoryEntry, err error) {
	w.results[i] = tradeunit.PutResult{Entry: cur, Err: err}
}

// put writes entry i on its own.
func (w *writer) put(i int) error {
	if w.entries[i].Version == 1 {
		return w.insert(i)
	}
	cur, err := w.current(w.entries[i].Key, forUpdate)
	if err != nil {
		return err
	}
	if err := checkPut(w.op, cur, w.entries[i]); err != nil {
		w.conflict(i, cur, err)
		return nil
	}
	return w.update(i)
}

func (w *writer) insertArgs(args []any, e *tradeunit.DirectoryEntry) []any {
	return append(args, e.Key.Mchid, string(e.Key.Kind), e.Key.Value, e.Key.Bucket(), string(e.State),
		int64(e.Attempt.Unit), w.s.dialect.Uint64(e.Attempt.ID), e.Fingerprint, e.RecordNo, formatAttempts(e.Abandoned),
		tradeunit.UnixMicros(e.Created), tradeunit.UnixMicros(e.Updated), e.Version)
}

// insertMany inserts new entries of distinct keys in one statement. If a
// key exists, the statement fails whole and is rolled back alone (SQLite
// and InnoDB both undo a failed statement, not the transaction), and the
// rows go in one by one to find the ones that conflict.
func (w *writer) insertMany(rows []int) error {
	if len(rows) == 1 || w.s.prepared != nil {
		// SQLite runs a prepared statement per row for less than it
		// parses one of many rows.
		for _, i := range rows {
			if err := w.insert(i); err != nil {
				return err
			}
		}
		return nil
	}
	args := make([]any, 0, 13*len(rows))
	for _, i := range rows {
		args = w.insertArgs(args, w.entries[i])
	}
	query := "INSERT INTO directory_entries (" + insertColumns + ") VALUES " +
		insertRow + strings.Repeat(", "+insertRow, len(rows)-1)
	_, err := w.tx.ExecContext(w.ctx, query, args...)
	if err == nil {
		return nil
	}
	if !w.s.dialect.IsUniqueViolation(err) {
		return w.s.fail(w.op, err)
	}
	for _, i := range rows {
		if err := w.insert(i); err != nil {
			return err
		}
	}
	return nil
}

func (w *writer) insert(i int) error {
	e := w.entries[i]
	_, err := exec(w.ctx, w.tx, w.s.prepared.insertStmt(), insertOne, w.insertArgs(nil, e)...)
	if err == nil {
		return nil
	}
	if !w.s.dialect.IsUniqueViolation(err) {
		return w.s.fail(w.op, err)
	}
	// The failed insert holds a shared lock on the row: asking for an
	// exclusive one would deadlock with every other loser doing the same.
	cur, err := w.current(e.Key, shared)
	if err != nil {
		return err
	}
	if cur == nil {
		return w.s.fail(w.op, fmt.Errorf("insert %s: a duplicate key, but no row holds it", e.Key))
	}
	w.conflict(i, cur, checkPut(w.op, cur, e))
	return nil
}

// The locks of current: for a row about to be changed, or for a row
// only read.
const (
	forUpdate = " FOR UPDATE"
	shared    = " LOCK IN SHARE MODE"
)

// current reads the stored entry of k (nil: none) in the transaction: on
// MySQL a locking read (lock is forUpdate or shared), which sees the latest
// commit, not the transaction's snapshot, and holds the row (or its gap)
// until the end. SQLite has one writer: every read in its transaction is
// of the latest commit.
func (w *writer) current(k tradeunit.MerchantKey, lock string) (*tradeunit.DirectoryEntry, error) {
	var row *sql.Row
	if p := w.s.prepared; p != nil {
		row = w.tx.StmtContext(w.ctx, p.sel).QueryRowContext(w.ctx, k.Mchid, string(k.Kind), k.Value)
	} else {
		row = w.tx.QueryRowContext(w.ctx, selectEntry+lock, k.Mchid, string(k.Kind), k.Value)
	}
	cur, err := scanEntry(row)
	switch {
	case isNoRows(err):
		return nil, nil
	case err != nil:
		return nil, w.s.fail(w.op, err)
	}
	return cur, nil
}

// update writes entry i, which checkPut allowed over the row locked.
func (w *writer) update(i int) error {
	e := w.entries[i]
	res, err := exec(w.ctx, w.tx, w.s.prepared.updateStmt(), updateEntry,
		string(e.State), int64(e.Attempt.Unit), w.s.dialect.Uint64(e.Attempt.ID), e.Fingerprint,
		e.RecordNo, formatAttempts(e.Abandoned), tradeunit.UnixMicros(e.Created), tradeunit.UnixMicros(e.Updated), e.Version,
		e.Key.Mchid, string(e.Key.Kind), e.Key.Value, e.Version-1)
	return w.updated(res, err, 1)
}

// updated checks that an UPDATE changed the want rows it was checked for.
func (w *writer) updated(res sql.Result, err error, want int64) error {
	if err != nil {
		return w.s.fail(w.op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return w.s.fail(w.op, err)
	}
	if n != want {
		return w.s.fail(w.op, fmt.Errorf("update of %d locked entries changed %d", want, n))
	}
	return nil
}

// updateMany changes entries of distinct keys: on SQLite one by one
// (prepared statements, in process); on MySQL with a locking read of all
// their keys and one UPDATE of those checkPut allows, two round trips
// whatever their number.
func (w *writer) updateMany(rows []int) error {
	if w.s.dialect.Name() != "mysql" {
		for _, i := range rows {
			if err := w.put(i); err != nil {
				return err
			}
		}
		return nil
	}
	cur, err := w.currentMany(rows)
	if err != nil {
		return err
	}
	var apply []int
	for _, i := range rows {
		e := w.entries[i]
		c := cur[e.Key]
		if err := checkPut(w.op, c, e); err != nil {
			w.conflict(i, c, err)
			continue
		}
		apply = append(apply, i)
	}
	if len(apply) == 0 {
		return nil
	}
	if len(apply) == 1 {
		return w.update(apply[0])
	}
	// A derived table of the new rows, joined on the key. SET reads only
	// the new rows, so the order MySQL assigns in does not matter.
	var q strings.Builder
	q.WriteString("UPDATE directory_entries d JOIN (")
	args := make([]any, 0, 12*len(apply))
	for n, i := range apply {
		if n == 0 {
			q.WriteString("SELECT ? AS mchid, ? AS kind, ? AS value, ? AS state, ? AS attempt_unit, ? AS attempt_id, " +
				"? AS fingerprint, ? AS record_no, ? AS abandoned, ? AS created_us, ? AS updated_us, ? AS version")
		} else {
			q.WriteString(" UNION ALL SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?")
		}
		e := w.entries[i]
		args = append(args, e.Key.Mchid, string(e.Key.Kind), e.Key.Value, string(e.State), int64(e.Attempt.Unit),
			w.s.dialect.Uint64(e.Attempt.ID), e.Fingerprint, e.RecordNo, formatAttempts(e.Abandoned),
			tradeunit.UnixMicros(e.Created), tradeunit.UnixMicros(e.Updated), e.Version)
	}
	q.WriteString(`) n ON d.mchid = n.mchid AND d.kind = n.kind AND d.value = n.value
		SET d.state = n.state, d.attempt_unit = n.attempt_unit, d.attempt_id = n.attempt_id, d.fingerprint = n.fingerprint,
		d.record_no = n.record_no, d.abandoned = n.abandoned, d.created_us = n.created_us, d.updated_us = n.updated_us,
		d.version = n.version
		WHERE d.version = n.version - 1`)
	res, err := w.tx.ExecContext(w.ctx, q.String(), args...)
	return w.updated(res, err, int64(len(apply)))
}

// currentMany reads the stored entries of rows' keys with a lock (MySQL).
func (w *writer) currentMany(rows []int) (map[tradeunit.MerchantKey]*tradeunit.DirectoryEntry, error) {
	var q strings.Builder
	q.WriteString("SELECT " + columns + " FROM directory_entries WHERE ")
	args := make([]any, 0, 3*len(rows))
	for n, i := range rows {
		if n > 0 {
			q.WriteString(" OR ")
		}
		// Spelt out: MariaDB's range optimizer makes one point range on
		// the primary key of each; it does not for a row-value IN list.
		q.WriteString("(mchid = ? AND kind = ? AND value = ?)")
		k := w.entries[i].Key
		args = append(args, k.Mchid, string(k.Kind), k.Value)
	}
	q.WriteString(" FOR UPDATE")
	rs, err := w.tx.QueryContext(w.ctx, q.String(), args...)
	if err != nil {
		return nil, w.s.fail(w.op, err)
	}
	defer rs.Close()
	out := make(map[tradeunit.MerchantKey]*tradeunit.DirectoryEntry, len(rows))
	for rs.Next() {
		e, err := scanEntry(rs)
		if err != nil {
			return nil, w.s.fail(w.op, err)
		}
		out[e.Key] = e
	}
	if err := rs.Err(); err != nil {
		return nil, w.s.fail(w.op, err)
	}
	return out, nil
}

// compareKeys orders keys as the primary key does: by mchid, kind, value,
// bytewise.
func compareKeys(a, b tradeunit.MerchantKey) int {
	if c := strings.Compare(a.Mchid, b.Mchid); c != 0 {
		return c
	}
	if c := strings.Compare(string(a.Kind), string(b.Kind)); c != 0 {
		return c
	}
	return strings.Compare(a.Value, b.Value)
}
