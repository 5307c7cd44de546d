package sqldb

import (
	"database/sql/driver"
	"fmt"
	"strconv"
)

// Uint64 scans a 64-bit unsigned column (an attempt id): a uint64 from
// MySQL's BIGINT UNSIGNED, an int64 in two's complement from SQLite, or its
// text.
type Uint64 uint64

// Scan implements sql.Scanner.
func (u *Uint64) Scan(src any) error {
	switch v := src.(type) {
	case int64:
		*u = Uint64(uint64(v))
	case uint64:
		*u = Uint64(v)
	case []byte:
		return u.parse(string(v))
	case string:
		return u.parse(v)
	default:
		return fmt.Errorf("uint64 column: cannot scan %T", src)
	}
	return nil
}

func (u *Uint64) parse(s string) error {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return fmt.Errorf("uint64 column: %w", err)
	}
	*u = Uint64(n)
	return nil
}

// Uint64 is v as a statement argument: database/sql refuses a uint64 with
// its high bit set unless the driver takes it (MySQL's does, into BIGINT
// UNSIGNED); SQLite's integers are signed, so it goes in two's complement,
// which Uint64.Scan reads back.
func (d Dialect) Uint64(v uint64) driver.Value {
	if d.name == "sqlite" {
		return int64(v)
	}
	return v
}
