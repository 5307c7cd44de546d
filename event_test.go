package tradeunit

import (
	"testing"
	"time"
)

func TestEventOrderEvent(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		payload  string
		wantCode Code
		wantNo   string
		refund   bool
	}{
		{"order", `{"order":{"order_no":"N1","version":2}}`, "", "N1", false},
		{"order and refund", `{"order":{"order_no":"N1","version":3},"refund":{"refund_id":"N1-1","amount":5}}`, "", "N1", true},
		{"written before snapshots", `{"mchid":"1900000001","total":100}`, CodeInternal, "", false},
		{"not JSON", `{`, CodeInternal, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := Event{ID: 12, OrderNo: "N1", Type: EventOrderPaid, Payload: tt.payload, Time: at}
			got, err := e.OrderEvent(7)
			if code := ErrorCode(err); code != tt.wantCode {
				t.Fatalf("error: got %q (%v), want %q", code, err, tt.wantCode)
			}
			if err != nil {
				return
			}
			if got.Schema != EventSchema || got.ID != "7-12" || got.Unit != 7 || got.Seq != 12 || got.Type != EventOrderPaid ||
				!got.Time.Equal(at) || got.Order.OrderNo != tt.wantNo || (got.Refund != nil) != tt.refund {
				t.Fatalf("got %+v, want event 7-12 of %s (refund %v)", got, tt.wantNo, tt.refund)
			}
		})
	}
}
