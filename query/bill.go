package query

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha1"
	"database/sql"
	"encoding/csv"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"tradeunit"
)

// Bill is a merchant's trade bill of one day.
type Bill struct {
	// CSV is the bill file; SHA1 the hex SHA-1 of exactly its bytes.
	CSV  []byte
	SHA1 string
	// Rows is the number of detail rows (payments and refunds).
	Rows int
}

// The bill's columns, named as in WeChat Pay's trade bill of type ALL
// (pay.weixin.qq.com, 交易账单文件格式), a subset of its columns in its
// order, and what each holds here:
//
//	交易时间       trade time: a payment's success time, a refund's create time,
//	              "2006-01-02 15:04:05" in the store's zone
//	商户号         mchid
//	微信订单号     order_no (the unit-assigned order number)
//	商户订单号     out_trade_no
//	交易类型       trade type: always NATIVE (tradeunit records no other kind)
//	交易状态       SUCCESS on a payment's row, REFUND on a refund's
//	货币种类       currency
//	应结订单金额   settlement amount: the order's total on a payment's row,
//	              0.00 on a refund's (so the column sums to 应结订单总金额)
//	微信退款单号   refund_id (0 on a payment's row, as WeChat writes)
//	商户退款单号   out_refund_no (0 on a payment's row)
//	退款金额       refund amount (0.00 on a payment's row)
//	退款状态       SUCCESS on a refund's row (refunds commit synchronously),
//	              empty on a payment's
//	商品名称       description
//
// and the totals after them: 总交易单数 the detail rows, 应结订单总金额
// the sum of the settlement amounts, 退款总金额 the sum of the refunds.
// Amounts are in yuan with two decimals (fen / 100); totals add every
// currency together, as WeChat's bills are in CNY only.
var (
	billHeader       = []string{"交易时间", "商户号", "微信订单号", "商户订单号", "交易类型", "交易状态", "货币种类", "应结订单金额", "微信退款单号", "商户退款单号", "退款金额", "退款状态", "商品名称"}
	billTotalsHeader = []string{"总交易单数", "应结订单总金额", "退款总金额"}
)

// TradeTypeNative is the trade type every bill row has.
const TradeTypeNative = "NATIVE"

// billRow is one detail row before formatting.
type billRow struct {
	time                     int64
	refund                   bool // a refund's row; else a payment's
	order                    tradeunit.EventOrder
	refundID, outRefundNo    string
	settlement, refundAmount int64
	currency                 string
}

// TradeBill returns mchid's trade bill of day, in the style of WeChat Pay's
// bill of type ALL: one row per order paid that day and one per refund
// made that day (both may come for one order), by time, payments before
// refunds at the same microsecond, then by order number and refund id, so
// that the same data always gives the same bytes. Every value is prefixed
// with a backtick, as WeChat does, so that a spreadsheet keeps long numbers
// as text. Errors: PARAM_ERROR for no merchant; QUERY_STORE_UNAVAILABLE.
func (s *Store) TradeBill(ctx context.Context, mchid string, day Date) (Bill, error) {
	if mchid == "" {
		return Bill{}, tradeunit.Errorf(tradeunit.CodeParamError, "the bill names no merchant")
	}
	from, to := micros(day.Start(s.cfg.Zone)), micros(day.End(s.cfg.Zone))
	var rows []billRow
	err := s.readTx(ctx, "query.TradeBill", func(tx *sql.Tx) error {
		paid, err := tx.QueryContext(ctx, "SELECT "+orderColumns+` FROM orders
			WHERE mchid = $1 AND success_time >= $2 AND success_time < $3`, mchid, from, to)
		if err != nil {
			return err
		}
		orders, err := scanOrders(paid)
		if err != nil {
			return err
		}
		for _, o := range orders {
			rows = append(rows, billRow{time: micros(o.SuccessTime), order: o, settlement: o.Total, currency: o.Currency})
		}
		return each(ctx, tx, `SELECT r.refund_id, r.out_refund_no, r.amount, r.currency, r.create_time,
			r.order_no, COALESCE(o.out_trade_no, ''), COALESCE(o.description, '')
			FROM refunds r LEFT JOIN orders o ON o.order_no = r.order_no
			WHERE r.mchid = $1 AND r.create_time >= $2 AND r.create_time < $3`, []any{mchid, from, to},
			func(r *sql.Rows) error {
				row := billRow{refund: true, order: tradeunit.EventOrder{Mchid: mchid}}
				if err := r.Scan(&row.refundID, &row.outRefundNo, &row.refundAmount, &row.currency, &row.time,
					&row.order.OrderNo, &row.order.OutTradeNo, &row.order.Description); err != nil {
					return err
				}
				rows = append(rows, row)
				return nil
			})
	})
	if err != nil {
		return Bill{}, err
	}
	slices.SortFunc(rows, func(a, b billRow) int {
		if c := cmp.Compare(a.time, b.time); c != 0 {
			return c
		}
		if a.refund != b.refund {
			if a.refund {
				return 1
			}
			return -1
		}
		return cmp.Or(strings.Compare(a.order.OrderNo, b.order.OrderNo), strings.Compare(a.refundID, b.refundID))
	})
	return s.writeBill(rows)
}

func (s *Store) writeBill(rows []billRow) (Bill, error) {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Write(billHeader)
	var settled, refunded int64
	for _, r := range rows {
		state, refundID, outRefundNo, refundStatus := string(tradeunit.StateSuccess), "0", "0", ""
		if r.refund {
			state, refundID, outRefundNo, refundStatus = string(tradeunit.StateRefund), r.refundID, r.outRefundNo, string(tradeunit.RefundSuccess)
		}
		settled += r.settlement
		refunded += r.refundAmount
		w.Write(ticked(
			time.UnixMicro(r.time).In(s.cfg.Zone).Format(time.DateTime), r.order.Mchid, r.order.OrderNo,
			r.order.OutTradeNo, TradeTypeNative, state, r.currency, yuan(r.settlement), refundID, outRefundNo,
			yuan(r.refundAmount), refundStatus, r.order.Description))
	}
	w.Write(billTotalsHeader)
	w.Write(ticked(fmt.Sprint(len(rows)), yuan(settled), yuan(refunded)))
	w.Flush()
	if err := w.Error(); err != nil {
		return Bill{}, tradeunit.Internal("query.TradeBill", err)
	}
	sum := sha1.Sum(buf.Bytes())
	return Bill{CSV: buf.Bytes(), SHA1: hex.EncodeToString(sum[:]), Rows: len(rows)}, nil
}

// ticked prefixes every value with a backtick, as WeChat's bills do.
func ticked(values ...string) []string {
	for i, v := range values {
		values[i] = "`" + v
	}
	return values
}

// yuan writes an amount in fen as yuan with two decimals.
func yuan(fen int64) string {
	sign := ""
	if fen < 0 {
		sign, fen = "-", -fen
	}
	return fmt.Sprintf("%s%d.%02d", sign, fen/100, fen%100)
}
