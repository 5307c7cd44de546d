package query

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"

	"tradeunit/internal/sqlscript"
)

// migrations holds the versioned schema, a directory per dialect, files
// named NNNN_description.sql, applied in order and recorded in
// query_schema_migrations.
//
//go:embed migrations
var migrations embed.FS

// migrateLockKey is the PostgreSQL advisory lock that serializes the query
// store's migrations across processes (any constant of our own).
const migrateLockKey = 0x7175657279 // "query"

// migrate applies the migrations not yet applied, all in one transaction:
// both dialects' DDL is transactional, so a failed migration leaves nothing
// half done. Processes starting at once are serialized by SQLite's write
// lock (taken at BEGIN) or by a PostgreSQL advisory lock held until COMMIT.
func (s *Store) migrate(ctx context.Context) error {
	dir := path.Join("migrations", s.dialect.name)
	entries, err := migrations.ReadDir(dir)
	if err != nil {
		return err
	}
	type migration struct {
		version int
		name    string
	}
	var all []migration
	for _, e := range entries {
		prefix, _, _ := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(prefix)
		if err != nil || !strings.HasSuffix(e.Name(), ".sql") {
			return fmt.Errorf("migration file %s: want NNNN_name.sql", e.Name())
		}
		all = append(all, migration{v, e.Name()})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].version < all[j].version })
	return s.writeTx(ctx, "query.migrate", func(tx *sql.Tx) error {
		if s.dialect.name == postgresDialect.name {
			if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", migrateLockKey); err != nil {
				return fmt.Errorf("take migration lock: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS query_schema_migrations (
			version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL)`); err != nil {
			return err
		}
		for _, m := range all {
			var n int
			if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM query_schema_migrations WHERE version = $1", m.version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				continue
			}
			body, err := migrations.ReadFile(path.Join(dir, m.name))
			if err != nil {
				return err
			}
			for _, stmt := range sqlscript.Split(string(body)) {
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("migration %s: %w", m.name, err)
				}
			}
			if _, err := tx.ExecContext(ctx, "INSERT INTO query_schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name); err != nil {
				return fmt.Errorf("record migration %s: %w", m.name, err)
			}
		}
		return nil
	})
}
