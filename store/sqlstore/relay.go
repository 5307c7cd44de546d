package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"tradeunit"
)

// AcquireRelay takes or renews relay lease name for holder until now+ttl,
// and returns its cursor (0 for a relay never run). The lease row is read
// locked in the transaction that changes it, so of two relays racing for
// an expired lease one takes it and the other sees it taken.
func (s *Store) AcquireRelay(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (int64, error) {
	const op = "store.AcquireRelay"
	if err := checkLease(name, holder); err != nil {
		return 0, err
	}
	if ttl <= 0 {
		return 0, tradeunit.Errorf(tradeunit.CodeParamError, "relay lease ttl must be positive, got %s", ttl)
	}
	var cursor int64
	err := s.inTx(ctx, op, func(tx *sql.Tx) error {
		// A row to lock even for a relay's first run: two first
		// acquirers then queue on it instead of both inserting. Its
		// lease expired long ago, so the first to lock it takes it.
		if _, err := tx.ExecContext(ctx, s.dialect.InsertIgnore()+
			" INTO relay_leases (name, holder, lease_until, `cursor`, update_time) VALUES (?, '', 0, 0, ?)",
			name, tradeunit.UnixMicros(now)); err != nil {
			return s.fail(op, err)
		}
		l, err := s.lockLease(ctx, tx, op, name)
		if err != nil {
			return err
		}
		if l.holder != holder && l.heldAt(now) {
			return l.held(name, now)
		}
		cursor = l.cursor
		_, err = tx.ExecContext(ctx, "UPDATE relay_leases SET holder = ?, lease_until = ?, update_time = ? WHERE name = ?",
			holder, tradeunit.UnixMicros(now.Add(ttl)), tradeunit.UnixMicros(now), name)
		if err != nil {
			return s.fail(op, err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return cursor, nil
}

// SaveRelayCursor moves relay lease name's cursor forward to cursor, never
// back, if holder holds the lease at now; it does not renew the lease. The
// guard is in the UPDATE itself, so a holder that lost the lease (taken
// over, or expired) cannot write, however late its call arrives.
func (s *Store) SaveRelayCursor(ctx context.Context, name, holder string, cursor int64, now time.Time) error {
	const op = "store.SaveRelayCursor"
	if err := checkLease(name, holder); err != nil {
		return err
	}
	if cursor < 0 {
		return tradeunit.Errorf(tradeunit.CodeParamError, "relay cursor must not be negative, got %d", cursor)
	}
	return s.inTx(ctx, op, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE relay_leases SET `cursor` = CASE WHEN `cursor` > ? THEN `cursor` ELSE ? END, update_time = ?"+
			" WHERE name = ? AND holder = ? AND lease_until >= ?",
			cursor, cursor, tradeunit.UnixMicros(now), name, holder, tradeunit.UnixMicros(now))
		if err != nil {
			return s.fail(op, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return s.fail(op, err)
		} else if n == 1 {
			return nil
		}
		// MySQL counts changed rows, not matched ones: a save that
		// changes nothing (same cursor, same now) also gets 0. The
		// UPDATE locked the row whether or not it changed it, so this
		// read tells the two apart.
		l, err := s.lockLease(ctx, tx, op, name)
		switch {
		case isNoRows(err):
			return tradeunit.Errorf(tradeunit.CodeLeaseHeld, "relay lease %s was never acquired", name)
		case err != nil:
			return err
		case l.holder == holder && l.heldAt(now):
			return nil
		}
		return l.held(name, now)
	})
}

// ReleaseRelay ends holder's lease name at once (its cursor stays), so
// that another relay takes over without waiting for it to expire. A lease
// holder does not hold is left alone.
func (s *Store) ReleaseRelay(ctx context.Context, name, holder string) error {
	const op = "store.ReleaseRelay"
	if err := checkLease(name, holder); err != nil {
		return err
	}
	// In a transaction of its own only for the freeze fence (see inTx).
	return s.inTx(ctx, op, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "UPDATE relay_leases SET lease_until = 0 WHERE name = ? AND holder = ?", name, holder); err != nil {
			return s.fail(op, err)
		}
		return nil
	})
}

// lease is a row of relay_leases.
type lease struct {
	holder      string
	untilMicros int64 // the lease's last instant
	cursor      int64
}

// heldAt reports whether the lease holds at now.
func (l lease) heldAt(now time.Time) bool { return l.untilMicros >= tradeunit.UnixMicros(now) }

// held is the error of a caller that does not hold the lease at now.
func (l lease) held(name string, now time.Time) error {
	if l.holder == "" || !l.heldAt(now) {
		return tradeunit.Errorf(tradeunit.CodeLeaseHeld, "relay lease %s is held by no one now (expired or released): acquire it again", name)
	}
	return tradeunit.Errorf(tradeunit.CodeLeaseHeld, "relay lease %s is held by %s until %s",
		name, l.holder, tradeunit.FromUnixMicros(l.untilMicros).Format(time.RFC3339Nano))
}

// lockLease reads lease name, locking its row until tx ends.
func (s *Store) lockLease(ctx context.Context, tx *sql.Tx, op, name string) (lease, error) {
	var l lease
	err := tx.QueryRowContext(ctx, "SELECT holder, lease_until, `cursor` FROM relay_leases WHERE name = ?"+s.dialect.ForUpdate(), name).
		Scan(&l.holder, &l.untilMicros, &l.cursor)
	if isNoRows(err) {
		return l, err
	}
	if err != nil {
		return l, s.fail(op, err)
	}
	return l, nil
}

func checkLease(name, holder string) error {
	switch {
	case name == "":
		return tradeunit.Errorf(tradeunit.CodeParamError, "relay lease name must not be empty")
	case holder == "":
		return tradeunit.Errorf(tradeunit.CodeParamError, "relay lease holder must not be empty")
	}
	return nil
}
