package dirstore

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"tradeunit"
	"tradeunit/store/internal/sqldb"
)

// The bounds of an entry's fields, which the schema's columns hold.
const (
	// MaxAbandoned is the most abandoned attempts an entry may list: the
	// reconciler drains the list, and a key whose creates failed over
	// this often needs an operator, not a longer list.
	MaxAbandoned = 100
	// maxRecordNo and maxFingerprint are the widths of their columns.
	maxRecordNo    = 40
	maxFingerprint = 64
)

// validate checks an entry before it is written: a bad one fails alone,
// with PARAM_ERROR, and never reaches the storage, where it would fail
// the whole transaction.
func validate(e *tradeunit.DirectoryEntry) error {
	if e == nil {
		return tradeunit.Errorf(tradeunit.CodeParamError, "directory entry is nil")
	}
	if err := e.Key.Validate(); err != nil {
		return fmt.Errorf("directory entry key: %w", err)
	}
	bad := func(format string, args ...any) error {
		return tradeunit.Errorf(tradeunit.CodeParamError, "directory entry %s: "+format, append([]any{e.Key}, args...)...)
	}
	switch e.State {
	case tradeunit.EntryPending:
		if e.RecordNo != "" {
			return bad("a pending entry has no record number, got %q", e.RecordNo)
		}
	case tradeunit.EntryCommitted:
		if e.RecordNo == "" {
			return bad("a committed entry needs its record number")
		}
	default:
		return bad("state %q must be pending or committed", e.State)
	}
	if !printable(e.RecordNo, maxRecordNo) {
		return bad("record number %q must be at most %d printable ASCII characters", e.RecordNo, maxRecordNo)
	}
	if !printable(e.Fingerprint, maxFingerprint) {
		return bad("fingerprint %q must be at most %d printable ASCII characters", e.Fingerprint, maxFingerprint)
	}
	if err := validAttempt(e.Attempt); err != nil {
		return bad("attempt: %v", err)
	}
	if len(e.Abandoned) > MaxAbandoned {
		return bad("%d abandoned attempts, at most %d", len(e.Abandoned), MaxAbandoned)
	}
	for _, a := range e.Abandoned {
		if err := validAttempt(a); err != nil {
			return bad("abandoned attempt: %v", err)
		}
	}
	if e.Version < 1 {
		return bad("version %d must be at least 1", e.Version)
	}
	for _, t := range []time.Time{e.Created, e.Updated} {
		if !t.IsZero() && (t.Year() < 1970 || t.Year() > 9999) {
			return bad("time %v out of range", t)
		}
	}
	return nil
}

func validAttempt(a tradeunit.Attempt) error {
	if a.ID == 0 {
		return fmt.Errorf("attempt id 0 (unit %d)", a.Unit)
	}
	if err := a.Unit.Validate(); err != nil {
		return err
	}
	return nil
}

func printable(s string, max int) bool {
	if len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// stored returns the entry as the storage holds it: a copy, times at
// microseconds in UTC, no empty list.
func stored(e *tradeunit.DirectoryEntry) *tradeunit.DirectoryEntry {
	c := e.Clone()
	c.Created = tradeunit.FromUnixMicros(tradeunit.UnixMicros(e.Created))
	c.Updated = tradeunit.FromUnixMicros(tradeunit.UnixMicros(e.Updated))
	if len(c.Abandoned) == 0 {
		c.Abandoned = nil
	}
	return c
}

// formatAttempts writes a list of attempts as "unit:id,unit:id".
func formatAttempts(as []tradeunit.Attempt) string {
	var b strings.Builder
	for i, a := range as {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(uint64(a.Unit), 10))
		b.WriteByte(':')
		b.WriteString(strconv.FormatUint(a.ID, 10))
	}
	return b.String()
}

// parseAttempts reads formatAttempts.
func parseAttempts(s string) ([]tradeunit.Attempt, error) {
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	out := make([]tradeunit.Attempt, 0, len(parts))
	for _, p := range parts {
		u, id, ok := strings.Cut(p, ":")
		unit, err1 := strconv.ParseUint(u, 10, 32)
		n, err2 := strconv.ParseUint(id, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("abandoned attempts %q: malformed %q", s, p)
		}
		out = append(out, tradeunit.Attempt{Unit: tradeunit.UnitID(unit), ID: n})
	}
	return out, nil
}

// columns are the entry columns every query reads, in scanEntry's order.
const columns = "mchid, kind, value, state, attempt_unit, attempt_id, fingerprint, record_no, abandoned, created_us, updated_us, version"

type rowScanner interface{ Scan(dest ...any) error }

func scanEntry(row rowScanner) (*tradeunit.DirectoryEntry, error) {
	var (
		e                tradeunit.DirectoryEntry
		unit             int64
		id               sqldb.Uint64
		abandoned        string
		created, updated int64
	)
	if err := row.Scan(&e.Key.Mchid, &e.Key.Kind, &e.Key.Value, &e.State, &unit, &id, &e.Fingerprint,
		&e.RecordNo, &abandoned, &created, &updated, &e.Version); err != nil {
		return nil, err
	}
	e.Attempt = tradeunit.Attempt{Unit: tradeunit.UnitID(unit), ID: uint64(id)}
	var err error
	if e.Abandoned, err = parseAttempts(abandoned); err != nil {
		return nil, err
	}
	e.Created, e.Updated = tradeunit.FromUnixMicros(created), tradeunit.FromUnixMicros(updated)
	return &e, nil
}
