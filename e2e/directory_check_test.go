package e2e

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"tradeunit"
	"tradeunit/cluster"
	"tradeunit/store/sqlstore"
)

// The check that ends every directory test: what the clients were told
// agrees with itself, with the API and with every unit's storage, where a
// merchant order number has at most one order that is not closed as
// superseded.

// unitStores opens every unit's storage of the cluster's storage topology
// read-only, for the test's duration.
func unitStores(t *testing.T, c *cluster.Cluster) map[tradeunit.UnitID]*sqlstore.Store {
	t.Helper()
	out := map[tradeunit.UnitID]*sqlstore.Store{}
	for _, u := range c.Topology().Units {
		s, err := sqlstore.OpenReadOnly(context.Background(), u.Primary, nil)
		if err != nil {
			t.Fatalf("open unit %d's storage read-only: %v", u.Unit, err)
		}
		t.Cleanup(func() { s.Close() })
		out[u.Unit] = s
	}
	return out
}

// storedOrders returns every order of every unit's storage (the health
// probe's excepted), and every refund.
func storedOrders(t *testing.T, stores map[tradeunit.UnitID]*sqlstore.Store) ([]*tradeunit.Order, []*tradeunit.Refund) {
	t.Helper()
	ctx := context.Background()
	var orders []*tradeunit.Order
	var refunds []*tradeunit.Refund
	for u, s := range stores {
		for after := ""; ; {
			page, err := s.OrdersAfter(ctx, after, 1000)
			if err != nil {
				t.Fatalf("unit %d: scan orders: %v", u, err)
			}
			orders = append(orders, page...)
			if len(page) < 1000 {
				break
			}
			after = page[len(page)-1].OrderNo
		}
		for after := int64(0); ; {
			page, next, err := s.RefundsAfter(ctx, after, 1000)
			if err != nil {
				t.Fatalf("unit %d: scan refunds: %v", u, err)
			}
			refunds = append(refunds, page...)
			if len(page) < 1000 {
				break
			}
			after = next
		}
	}
	return orders, refunds
}

// superseded reports whether o is an orphan the directory closed.
func superseded(o *tradeunit.Order) bool {
	return o.State == tradeunit.StateClosed && o.CloseReason == tradeunit.CloseSuperseded
}

// storageView is what a scan of every unit's storage found.
type storageView struct {
	orders  int                                // orders stored
	perKey  map[merchantNo][]*tradeunit.Order  // every order of each (mchid, out_trade_no)
	orphans map[merchantNo][]*tradeunit.Order  // those closed as superseded
	live    map[merchantNo][]*tradeunit.Order  // those not closed as superseded
	refunds map[merchantNo][]*tradeunit.Refund // every refund of each (mchid, out_refund_no)
	byNo    map[string]*tradeunit.Order        // every order by number
	paid    map[merchantNo]int                 // paid orders per key
}

func scanStorage(t *testing.T, stores map[tradeunit.UnitID]*sqlstore.Store) storageView {
	t.Helper()
	orders, refunds := storedOrders(t, stores)
	v := storageView{orders: len(orders), perKey: map[merchantNo][]*tradeunit.Order{}, orphans: map[merchantNo][]*tradeunit.Order{},
		refunds: map[merchantNo][]*tradeunit.Refund{}, live: map[merchantNo][]*tradeunit.Order{}, byNo: map[string]*tradeunit.Order{},
		paid: map[merchantNo]int{}}
	for _, o := range orders {
		k := merchantNo{o.Mchid, o.OutTradeNo}
		v.perKey[k] = append(v.perKey[k], o)
		v.byNo[o.OrderNo] = o
		if superseded(o) {
			v.orphans[k] = append(v.orphans[k], o)
		} else {
			v.live[k] = append(v.live[k], o)
		}
		if o.State.Paid() {
			v.paid[k]++
		}
	}
	for _, f := range refunds {
		k := merchantNo{f.Mchid, f.OutRefundNo}
		v.refunds[k] = append(v.refunds[k], f)
	}
	return v
}

func (v storageView) orphanCount() int {
	n := 0
	for _, os := range v.orphans {
		n += len(os)
	}
	return n
}

// violations returns every way v breaks the guarantee against what the
// clients were told, and for how many merchant order numbers it is orphans
// still payable, which the reconciler may yet close.
func (v storageView) violations(l *told) (problems []string, payable int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	keys := make([]merchantNo, 0, len(v.live))
	for k := range v.live {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	for _, k := range keys {
		live := v.live[k]
		if len(live) <= 1 {
			continue
		}
		if v.paid[k] > 1 {
			problems = append(problems, fmt.Sprintf("%s: %d paid orders", k, v.paid[k]))
			continue
		}
		var nos []string
		for _, o := range live {
			nos = append(nos, fmt.Sprintf("%s (%s)", o.OrderNo, o.State))
		}
		payable++
		problems = append(problems, fmt.Sprintf("%s: %d orders not closed as superseded: %s", k, len(live), strings.Join(nos, ", ")))
	}
	for k, nos := range l.orders {
		for no := range nos {
			o := v.byNo[no]
			switch {
			case o == nil:
				problems = append(problems, fmt.Sprintf("%s: order %s was acknowledged and is in no unit's storage", k, no))
			case o.Mchid != k.mchid || o.OutTradeNo != k.no:
				problems = append(problems, fmt.Sprintf("%s: order %s was acknowledged for it, and is stored for %s/%s", k, no, o.Mchid, o.OutTradeNo))
			case superseded(o):
				problems = append(problems, fmt.Sprintf("%s: order %s was acknowledged and is closed as superseded", k, no))
			case l.paid[no] && !o.State.Paid():
				problems = append(problems, fmt.Sprintf("%s: order %s was acknowledged paid and is %s", k, no, o.State))
			}
		}
	}
	for k, fs := range v.refunds {
		if len(fs) > 1 {
			problems = append(problems, fmt.Sprintf("refund %s: %d refunds in storage", k, len(fs)))
		}
	}
	for k, ids := range l.refunds {
		fs := v.refunds[k]
		for id := range ids {
			if len(fs) == 0 || fs[0].RefundID != id {
				problems = append(problems, fmt.Sprintf("refund %s: %s was acknowledged, storage holds %d refunds", k, id, len(fs)))
			}
		}
	}
	sort.Strings(problems)
	return problems, payable
}

// checkTold ends a directory test. Everything the clients were told agrees
// with itself (one order number per merchant order number, one merchant
// order number per order, one refund per out_refund_no); the API (through
// the proxy at url) returns each told order by its out_trade_no and each
// refund by its out_refund_no; and a scan of every unit's storage finds every
// told order, not superseded (paid if an answer showed it paid), at most one
// order per (mchid, out_trade_no) that is not closed as superseded, and at
// most one refund per (mchid, out_refund_no). Orphans still payable may be
// closed by the reconciler for up to orphanBound. It returns the last scan.
func checkTold(t *testing.T, c *cluster.Cluster, url string, l *told) storageView {
	t.Helper()
	l.mu.Lock()
	var bad []string
	type lookup struct{ path, mchid, want, field string }
	var lookups []lookup
	for k, nos := range l.orders {
		if len(nos) != 1 {
			bad = append(bad, fmt.Sprintf("%s: told %d order numbers %v", k, len(nos), slices.Sorted(maps.Keys(nos))))
			continue
		}
		for no := range nos {
			lookups = append(lookups, lookup{"/v3/orders/out-trade-no/" + k.no, k.mchid, no, "order_no"})
		}
	}
	for no, ks := range l.keyOf {
		if len(ks) != 1 {
			bad = append(bad, fmt.Sprintf("order %s told for %d merchant numbers", no, len(ks)))
		}
	}
	for k, ids := range l.refunds {
		if len(ids) != 1 {
			bad = append(bad, fmt.Sprintf("refund %s: told %d refunds %v", k, len(ids), slices.Sorted(maps.Keys(ids))))
			continue
		}
		for id := range ids {
			lookups = append(lookups, lookup{"/v3/refunds/" + k.no, k.mchid, id, "refund_id"})
		}
	}
	l.mu.Unlock()
	sort.Strings(bad)
	for _, b := range bad {
		t.Errorf("told: %s", b)
	}

	// The API: 8 readers, each merchant through its own key.
	clients := map[string]*client{}
	for _, m := range c.Credentials.Merchants {
		clients[m.Mchid] = &client{t: t, base: url, key: m.APIKey, http: &http.Client{Timeout: 30 * time.Second}}
	}
	var (
		mu    sync.Mutex
		wrong []string
		wg    sync.WaitGroup
		work  = make(chan lookup)
	)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for q := range work {
				r, err := clients[q.mchid].try("GET", q.path, nil)
				if err == nil && r.status == 200 && r.str(q.field) == q.want {
					continue
				}
				mu.Lock()
				wrong = append(wrong, fmt.Sprintf("GET %s as %s: %v %d %s=%q, told %s", q.path, q.mchid, err, r.status, q.field, r.str(q.field), q.want))
				mu.Unlock()
			}
		}()
	}
	for _, q := range lookups {
		work <- q
	}
	close(work)
	wg.Wait()
	sort.Strings(wrong)
	for i, w := range wrong {
		if i == 10 {
			t.Errorf("... and %d more", len(wrong)-10)
			break
		}
		t.Errorf("API: %s", w)
	}

	// Every unit's storage, until no orphan is left payable.
	stores := unitStores(t, c)
	var v storageView
	var problems []string
	for deadline := time.Now().Add(orphanBound); ; time.Sleep(200 * time.Millisecond) {
		v = scanStorage(t, stores)
		var payable int
		problems, payable = v.violations(l)
		if payable == 0 || len(problems) > payable || time.Now().After(deadline) {
			break
		}
	}
	for i, p := range problems {
		if i == 10 {
			t.Errorf("... and %d more", len(problems)-10)
			break
		}
		t.Errorf("storage: %s", p)
	}
	var refunds int
	for _, fs := range v.refunds {
		refunds += len(fs)
	}
	t.Logf("invariants: %d merchant order numbers told, %d lookups through the API (%d wrong); storage of %d units: %d orders of %d merchant order numbers (%d orphans closed as superseded), %d refunds; %d violations",
		len(l.orders), len(lookups), len(wrong), len(stores), v.orders, len(v.perKey), v.orphanCount(), refunds, len(problems))
	return v
}

// requireOnePerKey fails the test unless every merchant order number of keys
// has exactly one order in v that is not closed as superseded, and, when
// strict, exactly one order: where no call to a unit failed, no create
// abandoned an attempt, and none may leave an orphan anywhere.
func requireOnePerKey(t *testing.T, v storageView, keys []merchantNo, strict bool) {
	t.Helper()
	for _, k := range keys {
		if n, live := len(v.perKey[k]), len(v.live[k]); live != 1 || strict && n != 1 {
			var nos []string
			for _, o := range v.perKey[k] {
				nos = append(nos, fmt.Sprintf("%s %s %s", o.OrderNo, o.State, o.CloseReason))
			}
			t.Errorf("%s: %d orders in storage %v, want exactly 1 (strict: %v)", k, n, nos, strict)
		}
	}
}

// failedUnitCalls returns how many calls to units the proxies at urls
// counted as failed (no answer, or the unit unavailable): creates abandon
// attempts only on those.
func failedUnitCalls(t *testing.T, urls ...string) int {
	t.Helper()
	n := 0.0
	for _, u := range urls {
		n += metric(scrape(t, u+"/metrics"), "tradeunit_proxy_unit_requests_total", "outcome", "failed")
	}
	return int(n)
}
