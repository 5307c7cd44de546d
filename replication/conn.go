package replication

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// ErrUnreachable is wrapped by the errors of operations on a server that
// did not answer: refused, reset, timed out or paused. A failover may
// accept it from an old primary that was killed; it never accepts it from
// the replica it promotes.
var ErrUnreachable = errors.New("server unreachable")

// ErrNotReplica is returned by operations that need a replica (WaitApplied)
// on a server that has no replication source configured.
var ErrNotReplica = errors.New("server is not a replica")

// defaultDialTimeout bounds the TCP connect when the DSN sets no timeout;
// the context bounds everything else, the handshake included, so that a
// paused server (which accepts TCP but never answers) cannot hang a caller.
const defaultDialTimeout = 2 * time.Second

// session is one connection to one server, for a short administrative task.
type session struct {
	addr string
	db   *sql.DB
	conn *sql.Conn
}

// dial connects to the server of a go-sql-driver DSN. An error that is not
// the server's own answer (say, access denied) wraps ErrUnreachable.
func dial(ctx context.Context, dsn string) (*session, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse DSN: %w", err)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = defaultDialTimeout
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Addr, err)
	}
	db := sql.OpenDB(connector)
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		var me *mysql.MySQLError
		if errors.As(err, &me) {
			return nil, fmt.Errorf("connect %s: %w", cfg.Addr, err)
		}
		return nil, fmt.Errorf("connect %s: %w: %w", cfg.Addr, ErrUnreachable, err)
	}
	return &session{addr: cfg.Addr, db: db, conn: conn}, nil
}

// Close closes the connection and its pool.
func (s *session) Close() {
	s.conn.Close()
	s.db.Close()
}

// exec runs statements in order on the session's connection.
func (s *session) exec(ctx context.Context, stmts ...string) error {
	for _, q := range stmts {
		if _, err := s.conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %s: %w", s.addr, q, err)
		}
	}
	return nil
}

// row reads the first row of a query into a map of column name to value
// (NULL is absent); ok is false when there is no row.
func (s *session) row(ctx context.Context, q string) (vals map[string]string, ok bool, err error) {
	rows, err := s.conn.QueryContext(ctx, q)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %s: %w", s.addr, q, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, false, err
	}
	if !rows.Next() {
		return nil, false, rows.Err()
	}
	raw := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range raw {
		ptrs[i] = &raw[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, false, fmt.Errorf("%s: %s: %w", s.addr, q, err)
	}
	vals = make(map[string]string, len(cols))
	for i, c := range cols {
		if raw[i].Valid {
			vals[c] = raw[i].String
		}
	}
	return vals, true, rows.Close()
}

// pairs reads a two-column result (SHOW STATUS, SHOW VARIABLES) into a map.
func (s *session) pairs(ctx context.Context, q string) (map[string]string, error) {
	rows, err := s.conn.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", s.addr, q, err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		out[strings.ToLower(k)] = v
	}
	return out, rows.Err()
}

// isMySQLError reports whether err is the server's error number code.
func isMySQLError(err error, code uint16) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == code
}

// MariaDB error numbers this package branches on.
const (
	errLockWaitTimeout = 1205 // ER_LOCK_WAIT_TIMEOUT: SET GLOBAL read_only waited too long
	errNoSuchThread    = 1094 // ER_NO_SUCH_THREAD: the connection to kill is gone already
	errNoSuchTable     = 1146 // ER_NO_SUCH_TABLE
	errBadDB           = 1049 // ER_BAD_DB_ERROR
)

// quote makes s a MariaDB string literal (for statements such as CHANGE
// MASTER that take no placeholders). It assumes the default sql_mode,
// where backslash escapes.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for _, r := range s {
		switch r {
		case '\'':
			b.WriteString(`\'`)
		case '\\':
			b.WriteString(`\\`)
		case 0:
			b.WriteString(`\0`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case 26:
			b.WriteString(`\Z`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

func atoi(s string) int {
	n, _ := strconv.Atoi(strings.TrimSpace(s))
	return n
}

func atou(s string) uint64 {
	n, _ := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	return n
}

func onOff(s string) bool {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "1", "ON", "YES", "TRUE":
		return true
	}
	return false
}
