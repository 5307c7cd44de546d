package query_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"tradeunit"
	"tradeunit/query"
)

// fakeReader answers with fixed values and records what it was asked.
type fakeReader struct {
	asOf    time.Time
	err     error // every method's error
	gotList query.ListQuery
	gotDay  query.Date
}

func (f *fakeReader) ListOrders(_ context.Context, q query.ListQuery) (query.OrderPage, error) {
	f.gotList = q
	return query.OrderPage{Orders: []tradeunit.EventOrder{}, NextCursor: "next"}, f.err
}
func (f *fakeReader) DailyStats(_ context.Context, mchid string, d query.Date) (query.Stats, error) {
	f.gotDay = d
	return query.Stats{Mchid: mchid, Date: d, Currencies: []query.CurrencyStats{}}, f.err
}
func (f *fakeReader) TradeBill(_ context.Context, _ string, d query.Date) (query.Bill, error) {
	f.gotDay = d
	return query.Bill{CSV: []byte("a,b\n"), SHA1: "cafe", Rows: 0}, f.err
}
func (f *fakeReader) AsOf(context.Context) (time.Time, error) { return f.asOf, f.err }
func (f *fakeReader) Zone() *time.Location                    { return query.ChinaStandardTime }

// now is the handler's clock: 2026-12-02 12:00 CST.
var now = time.Date(2026, 12, 2, 12, 0, 0, 0, query.ChinaStandardTime)

func serve(t *testing.T, r query.Reader, method, target string) *httptest.ResponseRecorder {
	t.Helper()
	auth := func(r *http.Request) (string, error) {
		if r.Header.Get("Authorization") == "" {
			return "", tradeunit.Errorf(tradeunit.CodeUnauthorized, "no key")
		}
		return "1900000001", nil
	}
	// writeErr as the proxy's: the code's status, the code in the body.
	writeErr := func(w http.ResponseWriter, _ *http.Request, err error) {
		status := map[tradeunit.Code]int{tradeunit.CodeParamError: 400, tradeunit.CodeUnauthorized: 401,
			tradeunit.CodeQueryUnavailable: 503}[tradeunit.ErrorCode(err)]
		if status == 0 {
			status = 500
		}
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]string{"code": string(tradeunit.ErrorCode(err)), "message": tradeunit.ErrorMessage(err)})
	}
	h := query.NewHandler(r, auth, writeErr, func() time.Time { return now })
	req := httptest.NewRequest(method, target, nil)
	req.Header.Set("Authorization", "key")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func TestHandlerParameters(t *testing.T) {
	asOf := now.Add(-1500 * time.Millisecond)
	tests := []struct {
		target string
		status int
	}{
		{"/v3/orders", 200},
		{"/v3/orders?create_time_start=2026-12-01T00:00:00%2B08:00&create_time_end=2026-12-02T00:00:00Z&trade_state=SUCCESS&limit=5&cursor=abc", 200},
		{"/v3/orders?create_time_start=2026-12-01T00:00:00+08:00", 200}, // an unescaped '+'
		{"/v3/orders?create_time_start=yesterday", 400},
		{"/v3/orders?limit=0", 400},
		{"/v3/orders?limit=ten", 400},
		{"/v3/orders?limit=1&limit=2", 400},
		{"/v3/orders?state=SUCCESS", 400}, // a typo must not widen the query
		{"/v3/statistics/daily?date=2026-12-02", 200},
		{"/v3/statistics/daily", 400},
		{"/v3/statistics/daily?date=2026-12-03", 400}, // after today
		{"/v3/statistics/daily?date=2026-13-01", 400},
		{"/v3/statistics/daily?date=20261201", 400},
		{"/v3/bill/tradebill?bill_date=2026-12-01", 200},
		{"/v3/bill/tradebill?bill_date=2026-12-02", 400}, // the day has not ended
		{"/v3/bill/tradebill", 400},
		{"/v3/billdownload/tradebill?bill_date=2026-12-01", 200},
		{"/v3/billdownload/tradebill?bill_date=bad", 400},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			w := serve(t, &fakeReader{asOf: asOf}, "GET", tt.target)
			if w.Code != tt.status {
				t.Fatalf("got status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			if tt.status != 200 {
				return
			}
			if got, want := w.Header().Get(query.HeaderAsOf), asOf.UTC().Format(time.RFC3339Nano); got != want {
				t.Errorf("got %s %q, want %q", query.HeaderAsOf, got, want)
			}
			if got := w.Header().Get(query.HeaderLagMs); got != "1500" {
				t.Errorf("got %s %q, want 1500", query.HeaderLagMs, got)
			}
			if strings.HasPrefix(tt.target, "/v3/billdownload/") {
				if got := w.Header().Get("Content-Type"); !strings.HasPrefix(got, "text/csv") || w.Body.String() != "a,b\n" ||
					w.Header().Get(query.HeaderBillSHA1) != "cafe" {
					t.Errorf("got %q %q %q, want the CSV and its SHA-1", got, w.Body, w.Header().Get(query.HeaderBillSHA1))
				}
				return
			}
			var body map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			if body["as_of"] != asOf.UTC().Format(time.RFC3339Nano) || body["lag_ms"] != 1500.0 {
				t.Errorf("got as_of %v, lag_ms %v, want %v, 1500", body["as_of"], body["lag_ms"], asOf)
			}
		})
	}
}

func TestHandlerPassesParsedValues(t *testing.T) {
	f := &fakeReader{asOf: now}
	serve(t, f, "GET", "/v3/orders?create_time_start=2026-12-01T00:00:00%2B08:00&trade_state=REFUND&limit=7&cursor=c1")
	want := query.ListQuery{Mchid: "1900000001", CreateFrom: time.Date(2026, 12, 1, 0, 0, 0, 0, query.ChinaStandardTime),
		State: tradeunit.StateRefund, Limit: 7, Cursor: "c1"}
	if got := f.gotList; got.Mchid != want.Mchid || !got.CreateFrom.Equal(want.CreateFrom) || !got.CreateTo.IsZero() ||
		got.State != want.State || got.Limit != want.Limit || got.Cursor != want.Cursor {
		t.Errorf("got %+v, want %+v", got, want)
	}
	w := serve(t, f, "GET", "/v3/bill/tradebill?bill_date=2026-12-01")
	var body struct {
		HashType    string `json:"hash_type"`
		HashValue   string `json:"hash_value"`
		DownloadURL string `json:"download_url"`
	}
	json.Unmarshal(w.Body.Bytes(), &body)
	if body.HashType != "SHA1" || body.HashValue != "cafe" || body.DownloadURL != "/v3/billdownload/tradebill?bill_date=2026-12-01" {
		t.Errorf("got %+v", body)
	}
	if f.gotDay != (query.Date{Year: 2026, Month: 12, Day: 1}) {
		t.Errorf("got day %v, want 2026-12-01", f.gotDay)
	}
}

func TestHandlerFailures(t *testing.T) {
	down := tradeunit.Errorf(tradeunit.CodeQueryUnavailable, "down")
	tests := []struct {
		name   string
		r      *fakeReader
		method string
		target string
		status int
	}{
		{"store unreachable", &fakeReader{err: down}, "GET", "/v3/orders", 503},
		{"store unreachable, stats", &fakeReader{err: down}, "GET", "/v3/statistics/daily?date=2026-12-01", 503},
		{"store knows nothing yet", &fakeReader{}, "GET", "/v3/orders", 503},
		{"bill's day not complete in the store", &fakeReader{asOf: time.Date(2026, 12, 1, 23, 0, 0, 0, query.ChinaStandardTime)},
			"GET", "/v3/bill/tradebill?bill_date=2026-12-01", 503},
		{"a fault", &fakeReader{err: errors.New("boom")}, "GET", "/v3/orders", 500},
		{"wrong method", &fakeReader{asOf: now}, "POST", "/v3/orders", 405},
		{"wrong method, bill", &fakeReader{asOf: now}, "DELETE", "/v3/bill/tradebill?bill_date=2026-12-01", 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := serve(t, tt.r, tt.method, tt.target)
			if w.Code != tt.status {
				t.Fatalf("got status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			if tt.status == 405 && !strings.Contains(w.Header().Get("Allow"), "GET") {
				t.Errorf("got Allow %q, want GET", w.Header().Get("Allow"))
			}
		})
	}
}
