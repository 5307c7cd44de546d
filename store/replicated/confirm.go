package replicated

import (
	"context"

	"tradeunit"
)

// confirm returns err, the outcome of a read of a MariaDB primary's store,
// if the server is still writable; a store fault is returned as it is.
//
// A result counts only if the server was still writable once it had been
// read. A failover fences the old primary (read_only) before it promotes
// another, so a server found writable after a read was still the only
// primary when the read ran, and the result is current. A server found
// read-only may have been replaced already, and the new primary written
// to, by services that followed the topology sooner than this one: its
// result is not trusted (UNIT_UNAVAILABLE), and a unit's read goes on to a
// replica, marked degraded. The check costs one round trip per read.
func confirm(ctx context.Context, s Store, err error) error {
	if code := tradeunit.ErrorCode(err); code == tradeunit.CodeInternal || code == tradeunit.CodeUnitUnavailable {
		return err
	}
	ro, cerr := s.ReadOnly(ctx)
	switch {
	case cerr != nil:
		return cerr
	case ro:
		return &tradeunit.Error{Code: tradeunit.CodeUnitUnavailable, Op: "replicated.confirm",
			Message: "the primary is read-only (fenced, failing over); retry later"}
	}
	return err
}
