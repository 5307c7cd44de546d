package proxy

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tradeunit"
)

func TestEveryCodeHasAStatus(t *testing.T) {
	codes := []tradeunit.Code{
		tradeunit.CodeParamError, tradeunit.CodeInvalidRequest, tradeunit.CodeUnauthorized, tradeunit.CodeNotFound,
		tradeunit.CodeOrderClosed, tradeunit.CodeOrderPaid, tradeunit.CodeNotEnough, tradeunit.CodeOutTradeNoUsed,
		tradeunit.CodeOutRefundNoUsed, tradeunit.CodeUnitUnavailable, tradeunit.CodeNoUnitAvailable, tradeunit.CodeInternal,
		tradeunit.CodeOrderSuperseded, tradeunit.CodeAttemptSuperseded, tradeunit.CodeQueryUnavailable,
		codeTooLarge, codeMethodNotAllowed, codeHeadersTooLarge,
	}
	for _, c := range codes {
		s := statusOf(c)
		if _, ok := httpStatus[c]; !ok {
			t.Errorf("code %s has no status in the table", c)
		}
		// Only our own faults are 5xx.
		ours := c == tradeunit.CodeInternal || c == tradeunit.CodeUnitUnavailable || c == tradeunit.CodeNoUnitAvailable ||
			c == tradeunit.CodeAttemptSuperseded || c == tradeunit.CodeQueryUnavailable
		if ours != (s >= 500) {
			t.Errorf("code %s maps to %d", c, s)
		}
	}
}

func TestDecodeBody(t *testing.T) {
	tests := []struct {
		body string
		want string // part of the message, "" for success
	}{
		{`{"out_trade_no":"a"}`, ""},
		{``, "empty"},
		{`{`, "not valid JSON"},
		{`{"out_trade_no":1}`, "out_trade_no must be a JSON string"},
		{`{"amount":{"total":"1"}}`, "amount.total must be a JSON integer"},
		{`{"amount":{"total":1.5}}`, "amount.total must be a JSON integer"},
		{`{"extra":1}`, "unknown field"},
		{`{} {}`, "trailing data"},
		{`{} }`, "trailing data"},
		{`{} ]`, "trailing data"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("POST", "/v3/orders", strings.NewReader(tt.body))
		var v createOrderBody
		err := decodeBody(httptest.NewRecorder(), r, &v)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%.40q: got %v, want success", tt.body, err)
		case tt.want != "" && (tradeunit.ErrorCode(err) != tradeunit.CodeParamError || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%.40q: got %v, want PARAM_ERROR with %q", tt.body, err, tt.want)
		}
	}
}

// TestDecodeBodyTooLarge: a body over the limit is 413 in the JSON shape.
func TestDecodeBodyTooLarge(t *testing.T) {
	r := httptest.NewRequest("POST", "/v3/orders", strings.NewReader(`{"description":"`+strings.Repeat("x", maxBody)+`"}`))
	var v createOrderBody
	err := decodeBody(httptest.NewRecorder(), r, &v)
	if tradeunit.ErrorCode(err) != codeTooLarge || statusOf(codeTooLarge) != 413 || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("got %v (status %d), want %s 413", err, statusOf(tradeunit.ErrorCode(err)), codeTooLarge)
	}
}

func TestLoadCredentialsRejectsBadFiles(t *testing.T) {
	tests := map[string]string{
		"not json":   `{`,
		"short key":  `{"merchants":[{"mchid":"1","api_key":"short"}]}`,
		"shared key": `{"merchants":[{"mchid":"1","api_key":"0123456789abcdef"},{"mchid":"2","api_key":"0123456789abcdef"}]}`,
		"twice":      `{"merchants":[{"mchid":"1","api_key":"0123456789abcdef"},{"mchid":"1","api_key":"0123456789abcdeg"}]}`,
		"bad mchid":  `{"merchants":[{"mchid":"a b","api_key":"0123456789abcdef"}]}`,
		"probe":      `{"merchants":[{"mchid":"` + tradeunit.ProbeMchid + `","api_key":"0123456789abcdef"}]}`,
	}
	for name, body := range tests {
		path := filepath.Join(t.TempDir(), "m.json")
		os.WriteFile(path, []byte(body), 0o600)
		if _, err := LoadCredentials(path); err == nil {
			t.Errorf("%s: got nil error", name)
		}
	}
}

func TestAuthResolvesMerchantFromKey(t *testing.T) {
	idx, err := (&Credentials{Merchants: []Merchant{{Mchid: "1900000001", APIKey: "0123456789abcdef"}}}).index()
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{keys: idx, log: discardLogger()}
	var got string
	h := p.auth(func(w http.ResponseWriter, r *http.Request) { got = mchidOf(r) })
	for header, want := range map[string]string{
		"Bearer 0123456789abcdef": "1900000001",
		"Bearer wrong":            "",
		"0123456789abcdef":        "",
		"":                        "",
	} {
		got = ""
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", header)
		w := httptest.NewRecorder()
		h(w, r)
		if got != want || (want == "" && w.Code != http.StatusUnauthorized) {
			t.Errorf("Authorization %q: merchant %q status %d, want %q", header, got, w.Code, want)
		}
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
