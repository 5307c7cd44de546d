package sqlstore

import (
	"context"
	"reflect"
	"testing"

	"tradeunit"
)

// TestReadStmts: the point reads are prepared once each on SQLite's read
// pool and answer as the unprepared reads do, a missing row included; a
// closed store prepares nothing more.
func TestReadStmts(t *testing.T) {
	ctx := context.Background()
	s := openCacheTestStore(t)
	o := cacheTestBatches(t, 1, 1)[0][0]
	if r := s.CreateOrders(ctx, []*tradeunit.Order{o}); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	unprepared := func(where string, args ...any) (*tradeunit.Order, error) {
		return s.queryOrder(ctx, s.read, "test", where, args...)
	}
	tests := []struct {
		name string
		read func() (*tradeunit.Order, error)
		want func() (*tradeunit.Order, error)
	}{
		{"by number", func() (*tradeunit.Order, error) { return s.Order(ctx, o.OrderNo) },
			func() (*tradeunit.Order, error) { return unprepared("order_no = ?", o.OrderNo) }},
		{"by out_trade_no", func() (*tradeunit.Order, error) { return s.OrderByOutTradeNo(ctx, o.Mchid, o.OutTradeNo) },
			func() (*tradeunit.Order, error) {
				return unprepared("mchid = ? AND out_trade_no = ?", o.Mchid, o.OutTradeNo)
			}},
		{"missing", func() (*tradeunit.Order, error) { return s.Order(ctx, o.OrderNo[:len(o.OrderNo)-1]+"9") },
			func() (*tradeunit.Order, error) { return unprepared("order_no = ?", o.OrderNo[:len(o.OrderNo)-1]+"9") }},
	}
	for _, tt := range tests {
		for range 3 {
			got, err := tt.read()
			want, werr := tt.want()
			if !reflect.DeepEqual(got, want) || tradeunit.ErrorCode(err) != tradeunit.ErrorCode(werr) {
				t.Errorf("%s: got %+v, %v; want %+v, %v", tt.name, got, err, want, werr)
			}
		}
	}
	if _, err := s.Refund(ctx, o.Mchid, "no-such-refund"); !tradeunit.IsCode(err, tradeunit.CodeNotFound) {
		t.Errorf("a missing refund: %v, want NOT_FOUND", err)
	}
	s.reads.mu.Lock()
	n := len(s.reads.stmts)
	s.reads.mu.Unlock()
	if n != 3 { // the order by number, by out_trade_no, the refund
		t.Errorf("%d read statements prepared, want 3", n)
	}
	s.Close()
	if _, err := s.Order(ctx, o.OrderNo); err == nil {
		t.Error("a read of a closed store succeeded")
	}
	if n := len(s.reads.stmts); n != 0 || !s.reads.closed {
		t.Errorf("after Close: %d statements, closed %v", n, s.reads.closed)
	}
}
