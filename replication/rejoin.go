package replication

import (
	"context"
	"errors"
	"fmt"
)

// ErrErrantGTIDs is wrapped by Rejoin's error when the server holds
// transactions the new primary does not.
var ErrErrantGTIDs = errors.New("errant transactions")

// ErrantError is Rejoin's refusal: the server's transactions that the new
// primary lacks (see Errant).
type ErrantError struct {
	Addr   string
	Errant GTIDList
}

// Error names the server and its errant GTIDs.
func (e *ErrantError) Error() string {
	return fmt.Sprintf("%s holds %s the new primary lacks (%s): rebuild it from the new primary", e.Addr, ErrErrantGTIDs, e.Errant)
}

// Unwrap makes errors.Is(err, ErrErrantGTIDs) true.
func (e *ErrantError) Unwrap() error { return ErrErrantGTIDs }

// ErrantGTIDs returns the transactions an old primary (or any server) has
// that the new primary has not, comparing their gtid_binlog_state per
// domain and server (see Errant). Empty means the old one can follow the
// new one.
func ErrantGTIDs(ctx context.Context, oldDSN, newPrimaryDSN string) (GTIDList, error) {
	old, err := Inspect(ctx, oldDSN)
	if err != nil {
		return nil, fmt.Errorf("errant GTIDs: %w", err)
	}
	cur, err := Inspect(ctx, newPrimaryDSN)
	if err != nil {
		return nil, fmt.Errorf("errant GTIDs: %w", err)
	}
	return Errant(old.BinlogState, cur.BinlogState), nil
}

// Rejoin makes a server (an old primary after a failover, or any server
// that left the set) a replica of the new primary: it fences it, refuses
// with an *ErrantError when it holds transactions the new primary lacks,
// and otherwise re-points it to src from its own binlog position.
//
// A primary killed while commits waited for acknowledgement holds them in
// its binlog. Restarted with init_rpl_role=SLAVE (MariaDB 10.11.9+), its
// crash recovery rolls them back and truncates them from the binlog (they
// were never acknowledged), so that it can rejoin; restarted as a primary
// it would commit them, and they would be errant. Errant transactions
// cannot be undone here: such a server must be rebuilt from the new
// primary (a fresh copy), never rejoined, or it would serve data no one
// else has and break replication later.
func Rejoin(ctx context.Context, dsn, newPrimaryDSN string, src Source) error {
	if err := Fence(ctx, dsn); err != nil {
		return fmt.Errorf("rejoin: %w", err)
	}
	errant, err := ErrantGTIDs(ctx, dsn, newPrimaryDSN)
	if err != nil {
		return fmt.Errorf("rejoin: %w", err)
	}
	s, err := dial(ctx, dsn)
	if err != nil {
		return fmt.Errorf("rejoin: %w", err)
	}
	defer s.Close()
	if len(errant) > 0 {
		return &ErrantError{Addr: s.addr, Errant: errant}
	}
	r, err := s.replicaStatus(ctx)
	if err != nil {
		return fmt.Errorf("rejoin: %w", err)
	}
	if r != nil {
		if err := s.exec(ctx, "STOP SLAVE"); err != nil {
			return fmt.Errorf("rejoin: %w", err)
		}
	}
	// Its binlog holds everything it has (as a primary it applied nothing
	// through replication, so gtid_slave_pos is stale): replicate from there.
	if err := s.exec(ctx, "SET GLOBAL gtid_slave_pos = @@gtid_binlog_pos"); err != nil {
		return fmt.Errorf("rejoin: %w", err)
	}
	return s.repoint(ctx, src)
}
