package proxy

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"tradeunit"
)

// TestReadConsistencyParameter: ?consistency= sets the read's consistency
// in its context; a bad value is a PARAM_ERROR.
func TestReadConsistencyParameter(t *testing.T) {
	for query, want := range map[string]tradeunit.Consistency{
		"": tradeunit.RealTime, "?consistency=realtime": tradeunit.RealTime, "?consistency=eventual": tradeunit.Eventual,
	} {
		ctx, err := readContext(httptest.NewRequest("GET", "/v3/orders/1"+query, nil))
		if err != nil || tradeunit.ConsistencyFrom(ctx) != want {
			t.Errorf("%q: got %v, want %s", query, err, want)
		}
	}
	if _, err := readContext(httptest.NewRequest("GET", "/v3/orders/1?consistency=stale", nil)); !tradeunit.IsCode(err, tradeunit.CodeParamError) {
		t.Errorf("bad consistency: got %v, want PARAM_ERROR", err)
	}
}

// TestReadFieldsInJSON: a result of the primary says nothing of where it
// was read; one of a replica says so, with its staleness rounded up to
// whole milliseconds, and whether the unit was degraded.
func TestReadFieldsInJSON(t *testing.T) {
	tests := []struct {
		read tradeunit.ReadInfo
		want string // the JSON fields, "" for none
	}{
		{tradeunit.ReadInfo{}, ""},
		{tradeunit.ReadInfo{Source: tradeunit.FromReplica, Staleness: 1500 * time.Microsecond}, `"read_from":"replica","staleness_ms":2`},
		{tradeunit.ReadInfo{Source: tradeunit.FromReplica, Degraded: true, Staleness: 3 * time.Second},
			`"read_from":"replica","degraded":true,"staleness_ms":3000`},
	}
	for _, tt := range tests {
		o := &tradeunit.Order{OrderNo: "1000011795260543000000000017", State: tradeunit.StateNotPay, Read: tt.read}
		data, err := json.Marshal(toOrderJSON(o))
		if err != nil {
			t.Fatal(err)
		}
		got := string(data)
		if tt.want == "" && strings.Contains(got, "read_from") || !strings.Contains(got, tt.want) {
			t.Errorf("%+v: got %s, want it to hold %s", tt.read, got, tt.want)
		}
		f := &tradeunit.Refund{RefundID: "r", Read: tt.read}
		if data, _ := json.Marshal(toRefundJSON(f)); !strings.Contains(string(data), tt.want) {
			t.Errorf("refund %+v: got %s, want it to hold %s", tt.read, data, tt.want)
		}
	}
}
