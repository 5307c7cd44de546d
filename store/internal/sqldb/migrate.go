package sqldb

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"tradeunit/internal/sqlscript"
)

// Schema is a store's versioned schema.
type Schema struct {
	// FS holds the migrations: a directory per dialect ("sqlite",
	// "mysql"), files named NNNN_description.sql, applied in order.
	FS fs.FS
	// Table records the versions applied: a name of the store's own, so
	// that two stores never read each other's versions.
	Table string
	// Foreign names tables that mark the database as another store's: Migrate
	// refuses a database that holds one, with the table's message.
	Foreign map[string]string
}

// execer is what a migration runs on: a transaction (SQLite) or a pinned
// connection (MySQL).
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

type migration struct {
	version int
	name    string
	sql     string
}

// migrateLock names the MySQL lock that serializes migrations. It is the
// same for every Schema, so that a store's Foreign check cannot race with
// another store migrating the same database.
const migrateLock = "CONCAT('tradeunit.migrate.', DATABASE())"

// Migrate applies the migrations of s not yet applied. Several service
// replicas start against the same storage at once, so migration is
// serialized across processes: SQLite by its write lock (its DDL is
// transactional, so all of it runs in one transaction), MySQL by a named
// lock (its DDL commits implicitly, so each migration is recorded as soon as
// it has run). goose was considered; its cross-process locking covers only
// PostgreSQL, and this is all it would do for us.
func (db *DB) Migrate(ctx context.Context, s Schema) error {
	all, err := loadMigrations(s.FS, db.dialect.name)
	if err != nil {
		return err
	}
	if db.dialect.name == sqliteDialect.name {
		tx, err := db.Write.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if err := db.applyMigrations(ctx, tx, s, all); err != nil {
			return err
		}
		return tx.Commit()
	}
	conn, err := db.Write.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK("+migrateLock+", 60)").Scan(&got); err != nil {
		return fmt.Errorf("take migration lock: %w", err)
	}
	if got.Int64 != 1 {
		return fmt.Errorf("take migration lock: timed out")
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT RELEASE_LOCK("+migrateLock+")")
	return db.applyMigrations(ctx, conn, s, all)
}

func (db *DB) applyMigrations(ctx context.Context, q execer, s Schema, all []migration) error {
	foreign := make([]string, 0, len(s.Foreign))
	for table := range s.Foreign {
		foreign = append(foreign, table)
	}
	sort.Strings(foreign)
	for _, table := range foreign {
		found, err := db.tableExists(ctx, q, table)
		if err != nil {
			return err
		}
		if found {
			return fmt.Errorf("%s (it has the table %s)", s.Foreign[table], table)
		}
	}
	if _, err := q.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+s.Table+` (
		version INTEGER NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL)`); err != nil {
		return fmt.Errorf("create %s: %w", s.Table, err)
	}
	applied := map[int]bool{}
	rows, err := q.QueryContext(ctx, "SELECT version FROM "+s.Table)
	if err != nil {
		return err
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return err
		}
		applied[v] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, m := range all {
		if applied[m.version] {
			continue
		}
		for _, stmt := range sqlscript.Split(m.sql) {
			if _, err := q.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("migration %s: %w", m.name, err)
			}
		}
		if _, err := q.ExecContext(ctx, "INSERT INTO "+s.Table+" (version, name) VALUES (?, ?)", m.version, m.name); err != nil {
			return fmt.Errorf("record migration %s: %w", m.name, err)
		}
	}
	return nil
}

func loadMigrations(fsys fs.FS, dialect string) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, dialect)
	if err != nil {
		return nil, err
	}
	var all []migration
	for _, e := range entries {
		prefix, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(prefix)
		if !ok || err != nil || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("migration file %s: want NNNN_name.sql", e.Name())
		}
		body, err := fs.ReadFile(fsys, path.Join(dialect, e.Name()))
		if err != nil {
			return nil, err
		}
		all = append(all, migration{version: v, name: e.Name(), sql: string(body)})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].version < all[j].version })
	return all, nil
}
