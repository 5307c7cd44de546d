package e2e

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"tradeunit"
	"tradeunit/cluster"
	"tradeunit/daemon"
	"tradeunit/daemon/proxyd"
)

// Helpers of the merchant-key directory's tests (issue 16): a second proxy
// over the same routing table, and clients that remember everything they
// were told, for checkTold (directory_check_test.go).

// startProxy starts another proxy over the cluster's routing table, as a
// second host would: its own connections, plan and view of the units, the
// cluster's proxy configuration changed by edit (if set). It stops when the
// test ends, before the cluster. It returns its base URL.
func startProxy(t *testing.T, c *cluster.Cluster, edit func(*proxyd.Config)) string {
	t.Helper()
	cfg := c.Proxy.Config
	cfg.Listen, cfg.AddrFile, cfg.Routes, cfg.Proxy.Health = "127.0.0.1:0", "", c.RoutesPath, c.HealthURL
	if edit != nil {
		edit(&cfg)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	m := &proxyd.Main{Config: cfg, Credentials: c.Credentials, Common: daemon.Common{Logger: log.With("proxy", "second")}}
	if err := m.Run(context.Background()); err != nil {
		t.Fatalf("start a second proxy: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close the second proxy: %v", err)
		}
	})
	return m.URL()
}

// merchantNo is a merchant's own number: an out_trade_no or out_refund_no.
type merchantNo struct{ mchid, no string }

func (k merchantNo) String() string { return k.mchid + "/" + k.no }

// told is everything the clients of a test were told: each order and refund
// any 200 carried, by the merchant's number.
type told struct {
	mu      sync.Mutex
	orders  map[merchantNo]map[string]bool // (mchid, out_trade_no) → order numbers
	keyOf   map[string]map[merchantNo]bool // order number → its keys
	paid    map[string]bool                // orders some answer showed paid
	refunds map[merchantNo]map[string]bool // (mchid, out_refund_no) → refund ids
	refOf   map[merchantNo]string          // (mchid, out_refund_no) → its order
}

func newTold() *told {
	return &told{orders: map[merchantNo]map[string]bool{}, keyOf: map[string]map[merchantNo]bool{},
		paid: map[string]bool{}, refunds: map[merchantNo]map[string]bool{}, refOf: map[merchantNo]string{}}
}

func addTo[K, V comparable](m map[K]map[V]bool, k K, v V) {
	if m[k] == nil {
		m[k] = map[V]bool{}
	}
	m[k][v] = true
}

// note records what a 200 told mchid.
func (l *told) note(mchid string, r response) {
	if r.status != 200 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if id := r.str("refund_id"); id != "" {
		k := merchantNo{mchid, r.str("out_refund_no")}
		addTo(l.refunds, k, id)
		l.refOf[k] = r.str("order_no")
		return
	}
	if no := r.str("order_no"); no != "" {
		k := merchantNo{mchid, r.str("out_trade_no")}
		addTo(l.orders, k, no)
		addTo(l.keyOf, no, k)
		if tradeunit.TradeState(r.str("trade_state")).Paid() {
			l.paid[no] = true
		}
	}
}

// dirClient is a client of one proxy as one merchant, whose every answer is
// noted in told.
type dirClient struct {
	*client
	mchid string
	told  *told
}

// dirClientOf returns a client of the proxy at url as the cluster's
// merchant number merchant.
func dirClientOf(t *testing.T, c *cluster.Cluster, url string, merchant int, l *told) *dirClient {
	m := c.Credentials.Merchants[merchant]
	return &dirClient{client: &client{t: t, base: url, key: m.APIKey, http: &http.Client{Timeout: 30 * time.Second}},
		mchid: m.Mchid, told: l}
}

// do is try, its answer noted; safe from any goroutine.
func (d *dirClient) do(method, path string, body any) (response, error) {
	r, err := d.try(method, path, body)
	if err == nil {
		d.told.note(d.mchid, r)
	}
	return r, err
}

// must is do that fails the test on a transport error.
func (d *dirClient) must(method, path string, body any) response {
	d.t.Helper()
	r, err := d.do(method, path, body)
	if err != nil {
		d.t.Fatal(err)
	}
	return r
}

// createAnswered creates as a merchant following the documented contract:
// a 503, or no answer at all (the client's own timeout of 30 s), is
// repeated with the same body (the same out_trade_no) until another answer
// comes, for up to 2 minutes. It returns the last answer, and how many
// times it repeated the create.
func (d *dirClient) createAnswered(body map[string]any) (response, int, error) {
	deadline := time.Now().Add(2 * time.Minute)
	for retries := 0; ; retries++ {
		r, err := d.do("POST", "/v3/orders", body)
		if (err == nil && r.status != 503) || time.Now().After(deadline) {
			return r, retries, err
		}
		time.Sleep(50 * time.Millisecond) // a client's back-off, not a wait for a condition
	}
}

func refundBody(orderNo, outRefundNo string, amount int64) map[string]any {
	return map[string]any{"order_no": orderNo, "out_refund_no": outRefundNo, "amount": map[string]any{"refund": amount, "currency": "CNY"},
		"reason": "e2e refund"}
}
