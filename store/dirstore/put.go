package dirstore

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"tradeunit"
)

// insertChunk is the most rows one INSERT statement carries (13 arguments
// each, well inside SQLite's limit of 32766).
const insertChunk = 64

const insertColumns = "mchid, kind, value, bucket, state, attempt_unit, attempt_id, fingerprint, record_no, abandoned, created_us, updated_us, version"

const insertRow = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"

// updateEntry moves an entry from version-1 to version. A pending entry
// may become anything; a committed one only keeps being the same commit
// (state, record, attempt and fingerprint), so that a Put can change no
// more than its abandoned list.
const updateEntry = `UPDATE directory_entries SET state = ?, attempt_unit = ?, attempt_id = ?, fingerprint = ?,
	record_no = ?, abandoned = ?, created_us = ?, updated_us = ?, version = ?
	WHERE mchid = ? AND kind = ? AND value = ? AND version = ?
	AND (state = 'pending' OR (? = 'committed' AND record_no = ? AND attempt_unit = ? AND attempt_id = ? AND fingerprint = ?))`

// Put stores each entry if the stored one is at the entry's Version-1 (see
// tradeunit.DirectoryStore), all in one transaction. An invalid entry fails
// alone with PARAM_ERROR; an entry that lost the compare-and-swap fails
// alone with an error wrapping tradeunit.ErrVersionConflict and the entry
// now stored (INVALID_REQUEST), or no entry if none is stored
// (RESOURCE_NOT_EXISTS); if the transaction does not commit, every other
// result carries its error (UNIT_UNAVAILABLE: nothing written, or the
// outcome unknown when COMMIT's answer was lost).
//
// Entries of distinct keys are written in key order (inserts in one
// statement per insertChunk), so that concurrent batches take their row
// locks in one order; entries of a key that comes more than once are
// written in the order given, each seeing the ones before it.
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
		for i := 0; i < len(inserts); i += insertChunk {
			if err := w.insertMany(inserts[i:min(i+insertChunk, len(inserts))]); err != nil {
				return err
			}
		}
		for _, i := range updates {
			if err := w.update(i); err != nil {
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

func (w *writer) put(i int) error {
	if w.entries[i].Version == 1 {
		return w.insert(i)
	}
	return w.update(i)
}

func (w *writer) insertArgs(args []any, e *tradeunit.DirectoryEntry) []any {
	return append(args, e.Key.Mchid, string(e.Key.Kind), e.Key.Value, e.Key.Bucket(), string(e.State),
		int64(e.Attempt.Unit), w.s.idArg(e.Attempt.ID), e.Fingerprint, e.RecordNo, formatAttempts(e.Abandoned),
		tradeunit.UnixMicros(e.Created), tradeunit.UnixMicros(e.Updated), e.Version)
}

// insertMany inserts new entries of distinct keys in one statement. If a
// key exists, the statement fails whole and is rolled back alone (SQLite
// and InnoDB both undo a failed statement, not the transaction), and the
// rows go in one by one to find the ones that conflict.
func (w *writer) insertMany(rows []int) error {
	if len(rows) == 1 {
		return w.insert(rows[0])
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
	_, err := w.tx.ExecContext(w.ctx, "INSERT INTO directory_entries ("+insertColumns+") VALUES "+insertRow,
		w.insertArgs(nil, e)...)
	if err == nil {
		return nil
	}
	if !w.s.dialect.IsUniqueViolation(err) {
		return w.s.fail(w.op, err)
	}
	return w.conflict(i)
}

func (w *writer) update(i int) error {
	e := w.entries[i]
	res, err := w.tx.ExecContext(w.ctx, updateEntry,
		string(e.State), int64(e.Attempt.Unit), w.s.idArg(e.Attempt.ID), e.Fingerprint,
		e.RecordNo, formatAttempts(e.Abandoned), tradeunit.UnixMicros(e.Created), tradeunit.UnixMicros(e.Updated), e.Version,
		e.Key.Mchid, string(e.Key.Kind), e.Key.Value, e.Version-1,
		string(e.State), e.RecordNo, int64(e.Attempt.Unit), w.s.idArg(e.Attempt.ID), e.Fingerprint)
	if err != nil {
		return w.s.fail(w.op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return w.s.fail(w.op, err)
	}
	if n == 1 {
		return nil
	}
	return w.conflict(i)
}

// conflict sets entry i's result to the conflict with the entry stored
// now, read in the transaction (on MySQL a locking read, which sees the
// latest commit, not the transaction's snapshot; the failed write already
// holds the row's lock).
func (w *writer) conflict(i int) error {
	e := w.entries[i]
	query := "SELECT " + columns + " FROM directory_entries WHERE mchid = ? AND kind = ? AND value = ?"
	if w.s.dialect.Name() == "mysql" {
		query += " LOCK IN SHARE MODE"
	}
	cur, err := scanEntry(w.tx.QueryRowContext(w.ctx, query, e.Key.Mchid, string(e.Key.Kind), e.Key.Value))
	switch {
	case isNoRows(err):
		w.results[i] = tradeunit.PutResult{Err: &tradeunit.Error{Code: tradeunit.CodeNotFound, Op: w.op,
			Message: fmt.Sprintf("directory entry %s does not exist (put at version %d)", e.Key, e.Version),
			Err:     tradeunit.ErrVersionConflict}}
		return nil
	case err != nil:
		return w.s.fail(w.op, err)
	}
	w.results[i] = tradeunit.PutResult{Entry: cur, Err: conflictError(w.op, e, cur)}
	return nil
}

// conflictError says why e lost to cur.
func conflictError(op string, e, cur *tradeunit.DirectoryEntry) error {
	why := fmt.Sprintf("it is at version %d, not %d", cur.Version, e.Version-1)
	if cur.Version == e.Version-1 && cur.State == tradeunit.EntryCommitted {
		why = fmt.Sprintf("it is committed to %s, which no Put changes", cur.RecordNo)
	}
	return &tradeunit.Error{Code: tradeunit.CodeInvalidRequest, Op: op, Err: tradeunit.ErrVersionConflict,
		Message: fmt.Sprintf("directory entry %s changed meanwhile: %s", e.Key, why)}
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
