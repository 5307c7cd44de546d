package sqlstore

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"strings"

	"tradeunit/store/internal/sqldb"
)

// The tables Sync copies and DeleteData empties, described here rather
// than read from the catalogue: the two dialects spell their types
// differently, and Sync must read every value into one canonical Go form
// (int64, uint64 or string) to compare a SQLite row with a MySQL one.

// colKind is how a column's values are read, compared and hashed.
type colKind uint8

const (
	kindInt  colKind = iota // INTEGER / BIGINT / INT: int64
	kindUint                // BIGINT UNSIGNED (an attempt): uint64, two's complement on SQLite
	kindText                // TEXT / VARCHAR / CHAR: string (MySQL returns []byte)
)

type column struct {
	name string
	kind colKind
}

// table is one table of a unit's data set.
type table struct {
	name string
	// cols are every column of the table, in the order rows are read,
	// hashed and written.
	cols []column
	// key is how many of cols, from the first, order the table's ranges.
	// It is the primary key, or a prefix of it whose order is the same on
	// every dialect: superseded_attempts' attempt is BIGINT UNSIGNED on
	// MySQL and signed on SQLite, so attempts with the high bit set sort
	// differently, and its ranges are cut on (mchid, out_trade_no) only.
	// Text keys are compared bytewise on both sides (SQLite's BINARY
	// collation, MySQL's utf8mb4_bin: see migration 0005), and Sync checks
	// in Go that every row it reads lies in its range.
	key int
	// autoID: the table's id is AUTOINCREMENT, and its counter is copied
	// too, so that the copy never hands out an id the source handed out
	// (an outbox id a relay already passed).
	autoID bool
}

func cols(spec string) []column {
	var out []column
	for _, f := range strings.Fields(spec) {
		name, kind, _ := strings.Cut(f, ":")
		c := column{name: name}
		switch kind {
		case "i":
			c.kind = kindInt
		case "u":
			c.kind = kindUint
		case "t":
			c.kind = kindText
		default:
			panic("sqlstore: bad column spec " + f)
		}
		out = append(out, c)
	}
	return out
}

// dataTables is the unit's data set in the order Sync copies it. It lacks
// unit_lifecycle (each storage's own) and schema_migrations.
var dataTables = []table{
	{name: "unit_identity", key: 1, cols: cols("id:i unit_id:i")},
	{name: "sequences", key: 1, cols: cols("name:t next_value:i")},
	{name: "relay_leases", key: 1, cols: cols("name:t holder:t lease_until:i cursor:i update_time:i")},
	{name: "superseded_attempts", key: 2, cols: cols("mchid:t out_trade_no:t attempt:u create_time:i")},
	{name: "orders", key: 1, cols: cols(`order_no:t mchid:t out_trade_no:t description:t total:i currency:t
		trade_state:t payment_id:t refunded:i abandoned_units:t create_time:i update_time:i success_time:i
		close_time:i attempt:u close_reason:t version:i`)},
	{name: "refunds", key: 1, autoID: true, cols: cols(`id:i mchid:t out_refund_no:t order_no:t amount:i
		currency:t reason:t status:t create_time:i`)},
	{name: "order_events", key: 1, autoID: true, cols: cols("id:i order_no:t event_type:t payload:t create_time:i")},
}

// colList is cols' names, quoted (`cursor` is a reserved word on MySQL;
// backquotes are valid identifiers' quotes on SQLite too).
func colList(cs []column) string {
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = "`" + c.name + "`"
	}
	return strings.Join(names, ", ")
}

// keyCond is a condition on t's key against k: op is ">" (after k) or
// "<=" (up to k). A row-value comparison spelt out column by column,
// (a > ? OR (a = ? AND b > ?)), which both dialects' optimizers take as a
// range of the primary key.
func (t table) keyCond(op string, k []any) (string, []any) {
	strict := op[:1] // ">" or "<"
	var ors []string
	var args []any
	for i := range k {
		var ands []string
		for j := 0; j < i; j++ {
			ands = append(ands, "`"+t.cols[j].name+"` = ?")
			args = append(args, k[j])
		}
		o := strict
		if i == len(k)-1 {
			o = op
		}
		ands = append(ands, "`"+t.cols[i].name+"` "+o+" ?")
		args = append(args, k[i])
		ors = append(ors, strings.Join(ands, " AND "))
	}
	if len(ors) == 1 {
		return ors[0], args
	}
	return "(" + strings.Join(ors, ") OR (") + ")", args
}

// rangeCond is the condition of the key range (lo, hi]; nil bounds are
// open.
func (t table) rangeCond(lo, hi []any) (string, []any) {
	var conds []string
	var args []any
	if lo != nil {
		c, a := t.keyCond(">", lo)
		conds, args = append(conds, "("+c+")"), append(args, a...)
	}
	if hi != nil {
		c, a := t.keyCond("<=", hi)
		conds, args = append(conds, "("+c+")"), append(args, a...)
	}
	if len(conds) == 0 {
		return "1 = 1", nil
	}
	return strings.Join(conds, " AND "), args
}

type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// boundary returns the key of the n-th row after lo in key order, or nil
// if fewer than n rows follow lo.
func (t table) boundary(ctx context.Context, q queryer, lo []any, n int) ([]any, error) {
	cond, args := t.rangeCond(lo, nil)
	keyCols := colList(t.cols[:t.key])
	rows, err := q.QueryContext(ctx, "SELECT "+keyCols+" FROM "+t.name+" WHERE "+cond+
		" ORDER BY "+keyCols+fmt.Sprintf(" LIMIT 1 OFFSET %d", n-1), args...)
	if err != nil {
		return nil, err
	}
	keys, err := scanRows(rows, t.cols[:t.key])
	if err != nil || len(keys) == 0 {
		return nil, err
	}
	return keys[0], nil
}

// readRange reads the rows of the key range (lo, hi], in key order.
func (t table) readRange(ctx context.Context, q queryer, lo, hi []any) ([][]any, error) {
	cond, args := t.rangeCond(lo, hi)
	return t.readWhere(ctx, q, cond, args)
}

// readWhere reads the rows that match cond, in key order.
func (t table) readWhere(ctx context.Context, q queryer, cond string, args []any) ([][]any, error) {
	rows, err := q.QueryContext(ctx, "SELECT "+colList(t.cols)+" FROM "+t.name+" WHERE "+cond+
		" ORDER BY "+colList(t.cols[:t.key]), args...)
	if err != nil {
		return nil, err
	}
	return scanRows(rows, t.cols)
}

// scanRows reads rows into canonical values and closes them.
func scanRows(rows *sql.Rows, cs []column) ([][]any, error) {
	defer rows.Close()
	var out [][]any
	dest := make([]any, len(cs))
	for rows.Next() {
		for i, c := range cs {
			switch c.kind {
			case kindInt:
				dest[i] = new(int64)
			case kindUint:
				dest[i] = new(sqldb.Uint64)
			default:
				dest[i] = new(string)
			}
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		r := make([]any, len(cs))
		for i, d := range dest {
			switch v := d.(type) {
			case *int64:
				r[i] = *v
			case *sqldb.Uint64:
				r[i] = uint64(*v)
			case *string:
				r[i] = *v
			}
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// compareKeys orders keys as Go does: integers by value, text bytewise.
func compareKeys(a, b []any) int {
	for i := range a {
		switch x := a[i].(type) {
		case int64:
			if y := b[i].(int64); x != y {
				if x < y {
					return -1
				}
				return 1
			}
		case string:
			if c := strings.Compare(x, b[i].(string)); c != 0 {
				return c
			}
		}
	}
	return 0
}

// checkOrder fails if rows are not in key order within (lo, hi] as Go
// compares keys: the storage's collation disagrees with the other side's,
// and ranges cut on one would not hold the same rows on the other.
func (t table) checkOrder(side string, rows [][]any, lo, hi []any) error {
	for i, r := range rows {
		k := r[:t.key]
		if (lo != nil && compareKeys(k, lo) <= 0) || (hi != nil && compareKeys(k, hi) > 0) ||
			(i > 0 && compareKeys(rows[i-1][:t.key], k) > 0) {
			return fmt.Errorf("%s: %s key %v is out of byte order in range (%v, %v]: the storage's collation is not binary", t.name, side, k, lo, hi)
		}
	}
	return nil
}

// rowHash hashes a row's canonical values, each tagged with its kind and
// text with its length, so that no two different rows encode alike.
func rowHash(r []any) (h uint64, size int64) {
	f := fnv.New64a()
	var b [binary.MaxVarintLen64 + 1]byte
	for _, v := range r {
		switch x := v.(type) {
		case int64:
			b[0] = 'i'
			binary.BigEndian.PutUint64(b[1:], uint64(x))
			f.Write(b[:9])
			size += 8
		case uint64:
			b[0] = 'u'
			binary.BigEndian.PutUint64(b[1:], x)
			f.Write(b[:9])
			size += 8
		case string:
			b[0] = 't'
			n := binary.PutUvarint(b[1:], uint64(len(x)))
			f.Write(b[:1+n])
			f.Write([]byte(x))
			size += int64(len(x))
		}
	}
	return mix(f.Sum64()), size
}

// mix is splitmix64's finalizer: FNV's low bits are weak, and the row
// hashes are summed.
func mix(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// rangeSum is a range's row count, checksum and size. The checksum is the
// sum of its rows' hashes: independent of order, so a table's checksum is
// the sum of its ranges' whatever the ranges were, and two storages' can
// be compared in a report.
func rangeSum(rows [][]any) (sum uint64, size int64) {
	for _, r := range rows {
		h, n := rowHash(r)
		sum += h
		size += n
	}
	return sum, size
}
