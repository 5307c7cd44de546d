package proxy

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"tradeunit"
	"tradeunit/routing"
)

// TestHTTPAnswersInTheJSONShape: what the HTTP layer answers by itself (a
// wrong method, a path it would redirect, an unknown path, a missing or
// differently cased auth scheme, the query API without a store) has the
// API's error body and a Request-ID, and no redirect is ever sent.
func TestHTTPAnswersInTheJSONShape(t *testing.T) {
	routes, err := routing.NewMemoryTable(&routing.Table{Revision: 1})
	if err != nil {
		t.Fatal(err)
	}
	const key = "0123456789abcdef"
	p, err := New(DefaultConfig(), Deps{Routes: routes, Dialer: &fakeDialer{units: map[string]*fakeUnit{}}, Registry: prometheus.NewRegistry(),
		Logger: discardLogger(), Credentials: &Credentials{Merchants: []Merchant{{Mchid: "1900000001", APIKey: key}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	srv := httptest.NewServer(p.Handler())
	defer srv.Close()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	tests := []struct {
		name, method, path, auth string
		status                   int
		code                     tradeunit.Code
		allow                    string
	}{
		{"wrong method", "DELETE", "/v3/orders", "Bearer " + key, 405, codeMethodNotAllowed, "GET, HEAD, POST"},
		{"wrong method on an order", "PUT", "/v3/orders/123/pay", "Bearer " + key, 405, codeMethodNotAllowed, "POST"},
		{"a double slash is not redirected", "GET", "/v3//orders/123", "Bearer " + key, 404, tradeunit.CodeNotFound, ""},
		{"a dot segment is not redirected", "GET", "/v3/refunds/../orders", "Bearer " + key, 404, tradeunit.CodeNotFound, ""},
		{"unknown path", "GET", "/v2/orders", "Bearer " + key, 404, tradeunit.CodeNotFound, ""},
		{"no auth", "GET", "/v3/refunds/r1", "", 401, tradeunit.CodeUnauthorized, ""},
		{"another scheme", "GET", "/v3/refunds/r1", "Basic " + key, 401, tradeunit.CodeUnauthorized, ""},
		{"the scheme in lower case is the same scheme", "GET", "/v3/statistics/daily?date=2026-12-01", "bearer " + key, 503, tradeunit.CodeQueryUnavailable, ""},
		{"the scheme in upper case too", "GET", "/v3/orders?limit=1", "BEARER " + key, 503, tradeunit.CodeQueryUnavailable, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL+tt.path, nil)
			req.URL.Opaque = tt.path // sent as written, not cleaned by the client
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				Code    tradeunit.Code `json:"code"`
				Message string         `json:"message"`
				Detail  struct {
					RequestID string `json:"request_id"`
				} `json:"detail"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatalf("body is not JSON: %v", err)
			}
			if resp.StatusCode != tt.status || body.Code != tt.code {
				t.Fatalf("got %d %s (%s), want %d %s", resp.StatusCode, body.Code, body.Message, tt.status, tt.code)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			if resp.Header.Get("Location") != "" {
				t.Errorf("a Location header: %q", resp.Header.Get("Location"))
			}
			if body.Detail.RequestID == "" || resp.Header.Get("Request-ID") != body.Detail.RequestID {
				t.Errorf("request id %q in the body, %q in the header", body.Detail.RequestID, resp.Header.Get("Request-ID"))
			}
			if got := resp.Header.Get("Allow"); got != tt.allow {
				t.Errorf("Allow %q, want %q", got, tt.allow)
			}
		})
	}
}

// TestHeadersTooLargeInTheJSONShape: headers over Config.MaxHeaderBytes are
// 431 with the JSON error body and a Request-ID, not the server's text.
func TestHeadersTooLargeInTheJSONShape(t *testing.T) {
	routes, err := routing.NewMemoryTable(&routing.Table{Revision: 1})
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.MaxHeaderBytes = 4096
	p, err := New(cfg, Deps{Routes: routes, Dialer: &fakeDialer{units: map[string]*fakeUnit{}}, Registry: prometheus.NewRegistry(),
		Logger: discardLogger(), Credentials: &Credentials{Merchants: []Merchant{{Mchid: "1900000001", APIKey: "0123456789abcdef"}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	srv := httptest.NewUnstartedServer(p.Handler())
	srv.Config.MaxHeaderBytes = 2*cfg.MaxHeaderBytes + 4096 // as tradeunit proxy sets it
	srv.Start()
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/healthz", nil)
	req.Header.Set("X-Big", strings.Repeat("a", cfg.MaxHeaderBytes))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Code, Message string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("431 body is not JSON: %v", err)
	}
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || body.Code != string(codeHeadersTooLarge) || resp.Header.Get("Request-ID") == "" {
		t.Fatalf("got %s %+v Request-ID %q, want 431 %s with a Request-ID", resp.Status, body, resp.Header.Get("Request-ID"), codeHeadersTooLarge)
	}
	// Under the limit: served.
	req.Header.Set("X-Big", "a")
	resp2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusOK {
		t.Fatalf("small headers: %s", resp2.Status)
	}
}
