// Package dirstore implements tradeunit.DirectoryStore over database/sql: a
// directory shard's storage, one SQLite file (development) or one MySQL
// database (production), opened, classified and migrated the way a unit's
// storage is (store/internal/sqldb), with a schema of its own.
//
// Put writes a whole slice of entries in one transaction, so a Batched
// store (group commit) lets many concurrent creates share one commit.
package dirstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"

	"tradeunit"
	"tradeunit/dsn"
	"tradeunit/store/internal/sqldb"
)

// Store is a directory shard's storage.
type Store struct {
	db      *sqldb.DB
	dialect sqldb.Dialect
	// write runs every transaction (one connection on SQLite); read serves
	// the reads outside them.
	write, read *sql.DB
	prepared    *prepared // SQLite only
}

var _ tradeunit.DirectoryStore = (*Store)(nil)

// migrations holds the directory's schema, one directory per dialect.
//
//go:embed migrations
var migrations embed.FS

// schema is the directory's schema: its versions are in a table of its own,
// and a database that holds a unit's storage is refused, so that a
// directory shard and a unit never share a database by mistake.
var schema = sqldb.Schema{
	FS:    mustSub(migrations, "migrations"),
	Table: "directory_schema_migrations",
	Foreign: map[string]string{
		"schema_migrations": "this database holds a unit's storage: a directory shard needs a database of its own",
	},
}

func mustSub(fsys fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(err)
	}
	return sub
}

// Open opens (creating if needed) the directory storage named by d and
// applies the embedded migrations: a SQLite file, or a MySQL database
// created if missing, connecting with the password passwords knows for d's
// user and server (nil: none). It refuses a unit's storage.
func Open(ctx context.Context, d dsn.DSN, passwords dsn.Passwords) (*Store, error) {
	if err := sqldb.CheckScheme(d); err != nil {
		return nil, err
	}
	db, err := sqldb.Open(ctx, d, passwords)
	if err != nil {
		return nil, fmt.Errorf("open directory storage %s: %w", d, err)
	}
	if err := db.Migrate(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate directory storage %s: %w", d, err)
	}
	s := newStore(db)
	if s.dialect.Name() == "sqlite" {
		if s.prepared, err = prepare(ctx, s.write, s.read); err != nil {
			db.Close()
			return nil, fmt.Errorf("prepare directory statements %s: %w", d, err)
		}
	}
	return s, nil
}

// OpenReadOnly opens the directory storage named by d for reads only (a
// replica, an operator's command): it neither creates the database nor
// migrates it, and does not connect until the first read; a SQLite file
// must exist. Put fails.
func OpenReadOnly(ctx context.Context, d dsn.DSN, passwords dsn.Passwords) (*Store, error) {
	if err := sqldb.CheckScheme(d); err != nil {
		return nil, err
	}
	db, err := sqldb.OpenReadOnly(ctx, d, passwords)
	if err != nil {
		return nil, fmt.Errorf("open directory storage %s read-only: %w", d, err)
	}
	return newStore(db), nil
}

func newStore(db *sqldb.DB) *Store {
	return &Store{db: db, dialect: db.Dialect(), write: db.Write, read: db.Read}
}

// Close closes the storage.
func (s *Store) Close() error { return errors.Join(s.prepared.close(), s.db.Close()) }

// Ping checks that the storage answers. Errors: UNIT_UNAVAILABLE.
func (s *Store) Ping(ctx context.Context) error { return s.db.Ping(ctx, "dirstore.Ping") }

// ReadOnly reports whether the server refuses writes now (a fenced or not
// yet promoted MySQL server); always false on SQLite.
func (s *Store) ReadOnly(ctx context.Context) (bool, error) {
	return s.db.ReadOnly(ctx, "dirstore.ReadOnly")
}

func (s *Store) fail(op string, err error) error { return s.db.Fail(op, err) }
