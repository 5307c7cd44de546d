package query

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"time"

	"tradeunit"
)

// Date is a civil date, a merchant's day: statistics and bills are per Date
// in the store's zone (Config.Zone). Build one with ParseDate.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// ParseDate parses "YYYY-MM-DD". Errors: PARAM_ERROR.
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil || t.Year() < 1970 {
		return Date{}, tradeunit.Errorf(tradeunit.CodeParamError, "date %q: want YYYY-MM-DD, e.g. 2026-12-01", s)
	}
	return Date{t.Year(), t.Month(), t.Day()}, nil
}

// DateOf returns the date t falls on in zone.
func DateOf(t time.Time, zone *time.Location) Date {
	y, m, d := t.In(zone).Date()
	return Date{y, m, d}
}

// String returns "YYYY-MM-DD".
func (d Date) String() string { return d.Start(time.UTC).Format(time.DateOnly) }

// MarshalText writes d as "YYYY-MM-DD".
func (d Date) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads "YYYY-MM-DD".
func (d *Date) UnmarshalText(b []byte) error {
	v, err := ParseDate(string(b))
	*d = v
	return err
}

// Start returns the first instant of d in zone.
func (d Date) Start(zone *time.Location) time.Time {
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, zone)
}

// End returns the first instant after d in zone.
func (d Date) End(zone *time.Location) time.Time {
	return time.Date(d.Year, d.Month, d.Day+1, 0, 0, 0, 0, zone)
}

// Sum is a count of orders or refunds and the sum of their amounts, in the
// currency's smallest unit.
type Sum struct {
	Count  int64 `json:"count"`
	Amount int64 `json:"amount"`
}

// CreatedSums are a day's created orders by their state now, amounts their
// totals.
type CreatedSums struct {
	All     Sum `json:"all"`
	NotPay  Sum `json:"notpay"`
	Success Sum `json:"success"`
	Refund  Sum `json:"refund"`
	Closed  Sum `json:"closed"`
}

// CurrencyStats are a day's statistics in one currency.
type CurrencyStats struct {
	Currency string `json:"currency"`
	// Created: orders created that day.
	Created CreatedSums `json:"created"`
	// Paid: orders paid that day (their success time), amounts their
	// totals.
	Paid Sum `json:"paid"`
	// Refunds: refunds made that day.
	Refunds Sum `json:"refunds"`
}

// Stats are a merchant's statistics of one day, per currency (amounts in
// different currencies do not add up), ordered by currency; a day without
// orders or refunds has none.
type Stats struct {
	Mchid      string          `json:"mchid"`
	Date       Date            `json:"date"`
	Currencies []CurrencyStats `json:"currencies"`
}

// DailyStats returns mchid's statistics of day (midnight to midnight in
// the store's zone), read from one snapshot. Errors: PARAM_ERROR for no
// merchant; QUERY_STORE_UNAVAILABLE.
func (s *Store) DailyStats(ctx context.Context, mchid string, day Date) (Stats, error) {
	if mchid == "" {
		return Stats{}, tradeunit.Errorf(tradeunit.CodeParamError, "the statistics name no merchant")
	}
	from, to := micros(day.Start(s.cfg.Zone)), micros(day.End(s.cfg.Zone))
	byCurrency := map[string]*CurrencyStats{}
	of := func(c string) *CurrencyStats {
		if byCurrency[c] == nil {
			byCurrency[c] = &CurrencyStats{Currency: c}
		}
		return byCurrency[c]
	}
	err := s.readTx(ctx, "query.DailyStats", func(tx *sql.Tx) error {
		err := each(ctx, tx, `SELECT currency, trade_state, COUNT(*), CAST(SUM(total) AS BIGINT) FROM orders
			WHERE mchid = $1 AND create_time >= $2 AND create_time < $3 GROUP BY currency, trade_state`,
			[]any{mchid, from, to}, func(rows *sql.Rows) error {
				var currency, state string
				var sum Sum
				if err := rows.Scan(&currency, &state, &sum.Count, &sum.Amount); err != nil {
					return err
				}
				c := &of(currency).Created
				c.All.add(sum)
				switch tradeunit.TradeState(state) {
				case tradeunit.StateNotPay:
					c.NotPay.add(sum)
				case tradeunit.StateSuccess:
					c.Success.add(sum)
				case tradeunit.StateRefund:
					c.Refund.add(sum)
				case tradeunit.StateClosed:
					c.Closed.add(sum)
				}
				return nil
			})
		if err != nil {
			return err
		}
		err = each(ctx, tx, `SELECT currency, COUNT(*), CAST(SUM(total) AS BIGINT) FROM orders
			WHERE mchid = $1 AND success_time >= $2 AND success_time < $3 GROUP BY currency`,
			[]any{mchid, from, to}, func(rows *sql.Rows) error {
				var currency string
				var sum Sum
				if err := rows.Scan(&currency, &sum.Count, &sum.Amount); err != nil {
					return err
				}
				of(currency).Paid = sum
				return nil
			})
		if err != nil {
			return err
		}
		return each(ctx, tx, `SELECT currency, COUNT(*), CAST(SUM(amount) AS BIGINT) FROM refunds
			WHERE mchid = $1 AND create_time >= $2 AND create_time < $3 GROUP BY currency`,
			[]any{mchid, from, to}, func(rows *sql.Rows) error {
				var currency string
				var sum Sum
				if err := rows.Scan(&currency, &sum.Count, &sum.Amount); err != nil {
					return err
				}
				of(currency).Refunds = sum
				return nil
			})
	})
	if err != nil {
		return Stats{}, err
	}
	st := Stats{Mchid: mchid, Date: day, Currencies: []CurrencyStats{}}
	for _, c := range byCurrency {
		st.Currencies = append(st.Currencies, *c)
	}
	slices.SortFunc(st.Currencies, func(a, b CurrencyStats) int { return strings.Compare(a.Currency, b.Currency) })
	return st, nil
}

func (s *Sum) add(o Sum) { s.Count += o.Count; s.Amount += o.Amount }

// Totals implements tradeunit.TotalsReader: every merchant's totals per
// currency over [from, to), ordered by mchid then currency: orders created
// (by create time), paid (by success time) and refunds (by the refund's
// create time) in the range. The probe merchant is never stored. Errors:
// PARAM_ERROR when from is after to; QUERY_STORE_UNAVAILABLE.
func (s *Store) Totals(ctx context.Context, from, to time.Time) ([]tradeunit.MerchantTotals, error) {
	if from.After(to) {
		return nil, tradeunit.Errorf(tradeunit.CodeParamError, "totals from %s is after to %s", from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano))
	}
	args := []any{micros(from), micros(to), tradeunit.ProbeMchid}
	var parts []tradeunit.MerchantTotals
	err := s.readTx(ctx, "query.Totals", func(tx *sql.Tx) error {
		for _, q := range []struct {
			sql string
			add func(t *tradeunit.MerchantTotals, n, sum int64)
		}{
			{`SELECT mchid, currency, COUNT(*), 0 FROM orders
				WHERE create_time >= $1 AND create_time < $2 AND mchid <> $3 GROUP BY mchid, currency`,
				func(t *tradeunit.MerchantTotals, n, _ int64) { t.Created = n }},
			{`SELECT mchid, currency, COUNT(*), CAST(SUM(total) AS BIGINT) FROM orders
				WHERE success_time >= $1 AND success_time < $2 AND mchid <> $3 GROUP BY mchid, currency`,
				func(t *tradeunit.MerchantTotals, n, sum int64) { t.Paid, t.PaidAmount = n, sum }},
			{`SELECT mchid, currency, COUNT(*), CAST(SUM(amount) AS BIGINT) FROM refunds
				WHERE create_time >= $1 AND create_time < $2 AND mchid <> $3 GROUP BY mchid, currency`,
				func(t *tradeunit.MerchantTotals, n, sum int64) { t.Refunds, t.RefundAmount = n, sum }},
		} {
			err := each(ctx, tx, q.sql, args, func(rows *sql.Rows) error {
				var t tradeunit.MerchantTotals
				var n, sum int64
				if err := rows.Scan(&t.Mchid, &t.Currency, &n, &sum); err != nil {
					return err
				}
				q.add(&t, n, sum)
				parts = append(parts, t)
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Byte order, as the storages sort (COLLATE "C" on PostgreSQL).
	return tradeunit.SumTotals(parts), nil
}

// each runs query on tx and calls fn for each row.
func each(ctx context.Context, tx *sql.Tx, query string, args []any, fn func(*sql.Rows) error) error {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}
