package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"tradeunit"
)

var _ tradeunit.TotalsReader = (*Store)(nil)

// Totals returns each merchant's totals per currency over [from, to), the
// probe merchant's excluded, ordered by mchid then currency. Its three
// aggregates (created, paid, refunded) are read in one read transaction, so
// they describe one state of the storage.
func (s *Store) Totals(ctx context.Context, from, to time.Time) ([]tradeunit.MerchantTotals, error) {
	const op = "store.Totals"
	if !from.Before(to) {
		return nil, tradeunit.Errorf(tradeunit.CodeParamError, "totals range [%s, %s) is empty", from, to)
	}
	tx, err := s.read.BeginTx(ctx, nil)
	if err != nil {
		return nil, s.fail(op, err)
	}
	defer tx.Rollback()
	var parts []tradeunit.MerchantTotals
	lo, hi := tradeunit.UnixMicros(from), tradeunit.UnixMicros(to)
	for _, q := range []struct {
		sql string
		add func(t *tradeunit.MerchantTotals, n, sum int64)
	}{
		{"SELECT mchid, currency, COUNT(*), 0 FROM orders WHERE create_time >= ? AND create_time < ? AND mchid <> ? GROUP BY mchid, currency",
			func(t *tradeunit.MerchantTotals, n, _ int64) { t.Created = n }},
		// success_time is 0 for an unpaid order: a range from the zero
		// time must not count those as paid.
		{"SELECT mchid, currency, COUNT(*), COALESCE(SUM(total), 0) FROM orders WHERE success_time >= ? AND success_time < ? AND success_time > 0 AND mchid <> ? GROUP BY mchid, currency",
			func(t *tradeunit.MerchantTotals, n, sum int64) { t.Paid, t.PaidAmount = n, sum }},
		{"SELECT mchid, currency, COUNT(*), COALESCE(SUM(amount), 0) FROM refunds WHERE create_time >= ? AND create_time < ? AND mchid <> ? GROUP BY mchid, currency",
			func(t *tradeunit.MerchantTotals, n, sum int64) { t.Refunds, t.RefundAmount = n, sum }},
	} {
		if parts, err = scanTotals(ctx, tx, q.sql, lo, hi, parts, q.add); err != nil {
			return nil, s.fail(op, err)
		}
	}
	return tradeunit.SumTotals(parts), nil
}

// scanTotals runs one aggregate of Totals and appends its rows to parts.
func scanTotals(ctx context.Context, tx *sql.Tx, query string, lo, hi int64,
	parts []tradeunit.MerchantTotals, add func(t *tradeunit.MerchantTotals, n, sum int64)) ([]tradeunit.MerchantTotals, error) {
	rows, err := tx.QueryContext(ctx, query, lo, hi, tradeunit.ProbeMchid)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			mchid, currency string
			n, sum          int64
		)
		if err := rows.Scan(&mchid, &currency, &n, &sum); err != nil {
			return nil, err
		}
		t := tradeunit.MerchantTotals{Mchid: mchid, Currency: currency}
		add(&t, n, sum)
		parts = append(parts, t)
	}
	return parts, rows.Err()
}
