package dirstore

import (
	"context"
	"database/sql"

	"tradeunit"
	"tradeunit/store/internal/sqldb"
)

func isNoRows(err error) bool { return sqldb.IsNoRows(err) }

// Entry returns a key's entry. Errors: PARAM_ERROR for an invalid key,
// RESOURCE_NOT_EXISTS, UNIT_UNAVAILABLE.
func (s *Store) Entry(ctx context.Context, key tradeunit.MerchantKey) (*tradeunit.DirectoryEntry, error) {
	const op = "dirstore.Entry"
	if err := key.Validate(); err != nil {
		return nil, err
	}
	var row *sql.Row
	if p := s.prepared; p != nil {
		row = p.entry.QueryRowContext(ctx, key.Mchid, string(key.Kind), key.Value)
	} else {
		row = s.read.QueryRowContext(ctx, selectEntry, key.Mchid, string(key.Kind), key.Value)
	}
	e, err := scanEntry(row)
	if isNoRows(err) {
		return nil, &tradeunit.Error{Code: tradeunit.CodeNotFound, Op: op, Message: "directory entry " + key.String() + " does not exist"}
	}
	if err != nil {
		return nil, s.fail(op, err)
	}
	return e, nil
}

// afterKey is the condition "the row's key sorts after (?, ?, ?)" and its
// arguments. SQLite walks an index from a row value; MariaDB does not use
// an index for one, but does for the same condition spelt out.
func (s *Store) afterKey(k tradeunit.MerchantKey) (string, []any) {
	if s.dialect.Name() == "sqlite" {
		return "(mchid, kind, value) > (?, ?, ?)", []any{k.Mchid, string(k.Kind), k.Value}
	}
	return "(mchid > ? OR (mchid = ? AND (kind > ? OR (kind = ? AND value > ?))))",
		[]any{k.Mchid, k.Mchid, string(k.Kind), string(k.Kind), k.Value}
}

// Abandoned returns up to limit entries that list abandoned attempts, in
// key order after the key after (the zero key: from the start). Errors:
// PARAM_ERROR for a limit below 1, UNIT_UNAVAILABLE.
func (s *Store) Abandoned(ctx context.Context, after tradeunit.MerchantKey, limit int) ([]*tradeunit.DirectoryEntry, error) {
	const op = "dirstore.Abandoned"
	if limit < 1 {
		return nil, tradeunit.Errorf(tradeunit.CodeParamError, "abandoned entries: limit must be positive, got %d", limit)
	}
	query, args := s.abandonedQuery(after, limit)
	return s.list(ctx, op, query, args...)
}

func (s *Store) abandonedQuery(after tradeunit.MerchantKey, limit int) (string, []any) {
	cond, args := s.afterKey(after)
	return "SELECT " + columns + " FROM directory_entries WHERE has_abandoned = 1 AND " + cond +
		" ORDER BY mchid, kind, value LIMIT ?", append(args, limit)
}

// EntriesInBucket returns up to limit entries of bucket, in key order after
// the key after (the zero key: from the start): how a bucket is copied to
// another shard. Errors: PARAM_ERROR for a bucket out of range or a limit
// below 1, UNIT_UNAVAILABLE.
func (s *Store) EntriesInBucket(ctx context.Context, bucket int, after tradeunit.MerchantKey, limit int) ([]*tradeunit.DirectoryEntry, error) {
	const op = "dirstore.EntriesInBucket"
	if err := validBucket(bucket); err != nil {
		return nil, err
	}
	if limit < 1 {
		return nil, tradeunit.Errorf(tradeunit.CodeParamError, "bucket entries: limit must be positive, got %d", limit)
	}
	query, args := s.bucketQuery(bucket, after, limit)
	return s.list(ctx, op, query, args...)
}

func (s *Store) bucketQuery(bucket int, after tradeunit.MerchantKey, limit int) (string, []any) {
	cond, args := s.afterKey(after)
	return "SELECT " + columns + " FROM directory_entries WHERE bucket = ? AND " + cond +
		" ORDER BY mchid, kind, value LIMIT ?", append(append([]any{bucket}, args...), limit)
}

// CountBucket returns how many entries bucket holds: how a copied bucket
// is verified. Errors: PARAM_ERROR for a bucket out of range,
// UNIT_UNAVAILABLE.
func (s *Store) CountBucket(ctx context.Context, bucket int) (int64, error) {
	const op = "dirstore.CountBucket"
	if err := validBucket(bucket); err != nil {
		return 0, err
	}
	var n int64
	if err := s.read.QueryRowContext(ctx, "SELECT COUNT(*) FROM directory_entries WHERE bucket = ?", bucket).Scan(&n); err != nil {
		return 0, s.fail(op, err)
	}
	return n, nil
}

func validBucket(b int) error {
	if b < 0 || b >= tradeunit.DirectoryBuckets {
		return tradeunit.Errorf(tradeunit.CodeParamError, "bucket %d out of range 0..%d", b, tradeunit.DirectoryBuckets-1)
	}
	return nil
}

func (s *Store) list(ctx context.Context, op, query string, args ...any) ([]*tradeunit.DirectoryEntry, error) {
	rows, err := s.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, s.fail(op, err)
	}
	return collect(op, s, rows)
}

func collect(op string, s *Store, rows *sql.Rows) ([]*tradeunit.DirectoryEntry, error) {
	defer rows.Close()
	var out []*tradeunit.DirectoryEntry
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return nil, s.fail(op, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(op, err)
	}
	return out, nil
}
