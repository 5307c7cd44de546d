package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"tradeunit"
)

// BindUnit records that this storage holds unit id, or checks that it does.
// A storage already bound is only read, so that a logic service opens a
// frozen one (a unit's cold copy, frozen until every logic service of the
// unit has switched to it; see package lifecycle).
func (s *Store) BindUnit(ctx context.Context, id tradeunit.UnitID) error {
	const op = "store.BindUnit"
	var bound int64
	switch err := s.write.QueryRowContext(ctx, "SELECT unit_id FROM unit_identity WHERE id = 1").Scan(&bound); {
	case err == nil:
		return checkBound(op, tradeunit.UnitID(bound), id)
	case !isNoRows(err):
		return s.fail(op, err)
	}
	err := s.inTx(ctx, op, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.dialect.InsertIgnore()+" INTO unit_identity (id, unit_id) VALUES (1, ?)", int64(id)); err != nil {
			return s.fail(op, err)
		}
		if err := tx.QueryRowContext(ctx, "SELECT unit_id FROM unit_identity WHERE id = 1").Scan(&bound); err != nil {
			return s.fail(op, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return checkBound(op, tradeunit.UnitID(bound), id)
}

func checkBound(op string, bound, id tradeunit.UnitID) error {
	if bound != id {
		return &tradeunit.Error{Code: tradeunit.CodeInvalidRequest, Op: op,
			Message: fmt.Sprintf("this storage holds unit %d, not unit %d", bound, id)}
	}
	return nil
}
