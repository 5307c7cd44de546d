package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/go-sql-driver/mysql"

	"tradeunit/dsn"
)

// mysqlConns is the pool size per storage: MEASURED.md found ~16
// connections the sweet spot for order+event transactions on MariaDB; more
// only adds latency.
const mysqlConns = 16

func openMySQL(ctx context.Context, d dsn.DSN, passwords dsn.Passwords) (*DB, error) {
	db, cfg, err := openMySQLPool(d, passwords, mysqlConns)
	if err != nil {
		return nil, err
	}
	if err := createDatabase(ctx, cfg); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// openMySQLPool opens a pool of conns connections to the database of d,
// without touching the server: connections are made when used.
func openMySQLPool(d dsn.DSN, passwords dsn.Passwords, conns int) (*DB, mysql.Config, error) {
	cfg, err := d.MySQLConfig(passwords)
	if err != nil {
		return nil, mysql.Config{}, err
	}
	if cfg.DBName == "" {
		return nil, mysql.Config{}, errors.New("mysql DSN needs a database name: one database per unit or directory shard")
	}
	// interpolateParams saves a round trip per statement (MEASURED.md).
	cfg.InterpolateParams = true
	cfg.Loc = time.UTC
	if cfg.Timeout == 0 {
		cfg.Timeout = 3 * time.Second
	}
	// The driver's Commit ignores the context: without these, a COMMIT
	// whose answer is lost on a dead link would wait for TCP to give up
	// (many minutes). Past them the connection fails, and the commit's
	// outcome is reported unknown (classify.go).
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = 30 * time.Second
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 30 * time.Second
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, mysql.Config{}, err
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	db.SetConnMaxLifetime(30 * time.Minute)
	return &DB{Write: db, Read: db, dialect: mysqlDialect}, *cfg, nil
}

// createDatabase creates the storage's database if it does not exist, so
// that a new unit or directory shard needs only a DSN.
func createDatabase(ctx context.Context, cfg mysql.Config) error {
	name := cfg.DBName
	cfg.DBName = ""
	connector, err := mysql.NewConnector(&cfg)
	if err != nil {
		return err
	}
	db := sql.OpenDB(connector)
	defer db.Close()
	_, err = db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS "+QuoteIdent(name)+" CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
	if err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// QuoteIdent quotes a MySQL identifier (a database or table name).
func QuoteIdent(s string) string {
	out := []byte{'`'}
	for i := 0; i < len(s); i++ {
		if s[i] == '`' {
			out = append(out, '`')
		}
		out = append(out, s[i])
	}
	return string(append(out, '`'))
}
