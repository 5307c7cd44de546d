package dirstore

import (
	"context"
	"database/sql"
	"slices"
	"strings"

	"tradeunit"
)

// Moving a bucket to another shard (admin directory move) copies its
// entries as they are, and then drops them where they were: the methods
// below, beside EntriesInBucket and CountBucket.

// Import stores entries exactly as they are, versions included, in one
// transaction: how a bucket is copied to the shard it moves to. Put cannot
// copy an entry: it numbers a new one 1, and a create that read an entry
// at version n on the old shard and writes n+1 on the new one must meet
// the same compare-and-swap there, or it could overwrite a newer entry.
// Every key must be new to the storage (a copy starts from an empty
// bucket, see DeleteBucket): a key it holds, or an invalid entry, fails
// the whole import and nothing is written. Errors: PARAM_ERROR,
// INVALID_REQUEST (a key held already), UNIT_UNAVAILABLE.
func (s *Store) Import(ctx context.Context, entries []*tradeunit.DirectoryEntry) error {
	const op = "dirstore.Import"
	for _, e := range entries {
		if err := validate(e); err != nil {
			return err
		}
	}
	sorted := slices.Clone(entries)
	slices.SortFunc(sorted, func(a, b *tradeunit.DirectoryEntry) int { return compareKeys(a.Key, b.Key) })
	for i := 1; i < len(sorted); i++ {
		if sorted[i].Key == sorted[i-1].Key {
			return tradeunit.Errorf(tradeunit.CodeParamError, "import: key %s is listed twice", sorted[i].Key)
		}
	}
	held := func() error {
		return &tradeunit.Error{Code: tradeunit.CodeInvalidRequest, Op: op,
			Message: "import: the storage holds a key of the import already; nothing was written (empty the bucket first)"}
	}
	return s.db.InTx(ctx, op, func(tx *sql.Tx) error {
		w := &writer{s: s, tx: tx, ctx: ctx, op: op}
		for rows := range slices.Chunk(sorted, chunk) {
			var err error
			if s.prepared != nil {
				for _, e := range rows {
					if _, err = exec(ctx, tx, s.prepared.insertStmt(), insertOne, w.insertArgs(nil, e)...); err != nil {
						break
					}
				}
			} else {
				args := make([]any, 0, 13*len(rows))
				for _, e := range rows {
					args = w.insertArgs(args, e)
				}
				_, err = tx.ExecContext(ctx, "INSERT INTO directory_entries ("+insertColumns+") VALUES "+
					insertRow+strings.Repeat(", "+insertRow, len(rows)-1), args...)
			}
			switch {
			case err == nil:
			case s.dialect.IsUniqueViolation(err):
				return held()
			default:
				return s.fail(op, err)
			}
		}
		return nil
	})
}

// DeleteBucket deletes every entry of bucket and returns how many it
// deleted: how a shard drops the copies of a bucket it no longer holds,
// or a move's partial copy. Errors: PARAM_ERROR for a bucket out of range,
// UNIT_UNAVAILABLE.
func (s *Store) DeleteBucket(ctx context.Context, bucket int) (int64, error) {
	const op = "dirstore.DeleteBucket"
	if err := validBucket(bucket); err != nil {
		return 0, err
	}
	var n int64
	err := s.db.InTx(ctx, op, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM directory_entries WHERE bucket = ?", bucket)
		if err != nil {
			return s.fail(op, err)
		}
		if n, err = res.RowsAffected(); err != nil {
			return s.fail(op, err)
		}
		return nil
	})
	return n, err
}

// Count returns how many entries the storage holds (a full count: for an
// operator's listing, not for a request path). Errors: UNIT_UNAVAILABLE.
func (s *Store) Count(ctx context.Context) (int64, error) {
	var n int64
	if err := s.read.QueryRowContext(ctx, "SELECT COUNT(*) FROM directory_entries").Scan(&n); err != nil {
		return 0, s.fail("dirstore.Count", err)
	}
	return n, nil
}
