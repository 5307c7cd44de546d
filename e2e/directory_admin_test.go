package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tradeunit"
	"tradeunit/admin"
	"tradeunit/cluster"
	"tradeunit/routing"
	"tradeunit/store/dirstore"
	"tradeunit/store/sqlstore"
	"tradeunit/unit"
)

// legacyRecord is an order (and maybe its refund) made before the
// directory: written straight into its unit's storage, with no entry.
type legacyRecord struct {
	out, orderNo      string
	total             int64
	refundNo, refunds string // out_refund_no and its order ("" for none)
}

// makeLegacy makes n orders on each unit, a third of them paid and
// refunded, with the units' own rules (package unit) over their SQLite
// files, opened beside the running logic services (SQLite lets both
// write): orders as the units made them before the directory existed.
func makeLegacy(t *testing.T, c *cluster.Cluster, mchid string, n int) []legacyRecord {
	t.Helper()
	ctx := context.Background()
	var out []legacyRecord
	for _, u := range c.Topology().Units {
		store, err := sqlstore.Open(ctx, u.Primary, nil)
		if err != nil {
			t.Fatal(err)
		}
		svc, err := unit.New(unit.DefaultConfig(u.Unit), store)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			rec := legacyRecord{out: fmt.Sprintf("legacy-%d-%03d", u.Unit, i), total: int64(100 + i)}
			o, err := svc.CreateOrder(ctx, tradeunit.CreateOrderRequest{Mchid: mchid, OutTradeNo: rec.out, Description: "e2e order",
				Amount: tradeunit.Amount{Total: rec.total, Currency: "CNY"}})
			if err != nil {
				t.Fatal(err)
			}
			rec.orderNo = o.OrderNo
			if i%3 == 0 {
				if _, err := svc.PayOrder(ctx, tradeunit.PayOrderRequest{Mchid: mchid, OrderNo: o.OrderNo, PaymentID: "pay-" + rec.out}); err != nil {
					t.Fatal(err)
				}
				rec.refundNo = "legacy-refund-" + rec.out
				if _, err := svc.CreateRefund(ctx, tradeunit.CreateRefundRequest{Mchid: mchid, OrderNo: o.OrderNo, OutRefundNo: rec.refundNo,
					Amount: tradeunit.RefundAmount{Refund: 50}, Reason: "legacy"}); err != nil {
					t.Fatal(err)
				}
				rec.refunds = o.OrderNo
			}
			out = append(out, rec)
		}
		store.Close()
	}
	return out
}

// tradeunitAdmin runs `tradeunit admin ARGS --routes ROUTES --json` and
// decodes its output into v; it returns the exit error and stderr.
func tradeunitAdmin(t *testing.T, c *cluster.Cluster, v any, args ...string) (error, string) {
	t.Helper()
	// The operator's certificate: backfill and verify call the shards.
	cmd := exec.Command(binary, append(append(append([]string{"admin"}, args...), "--routes", c.RoutesPath, "--json"), adminArgs(c)...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if jerr := json.Unmarshal(out, v); jerr != nil {
		t.Fatalf("tradeunit admin %s: %v, output %q, stderr %s", strings.Join(args, " "), jerr, out, stderr.String())
	}
	return err, stderr.String()
}

func backfillTotals(t *testing.T, c *cluster.Cluster) (orders, refunds admin.RecordCounts, res admin.BackfillResult) {
	t.Helper()
	err, stderr := tradeunitAdmin(t, c, &res, "directory", "backfill")
	if err != nil {
		t.Fatalf("backfill: %v: %s\nproblems %+v", err, stderr, res.Problems)
	}
	orders, refunds = res.Totals()
	return orders, refunds, res
}

// TestDirectoryBackfillAndMove: orders and refunds that units made before
// the directory are found by nobody until `tradeunit admin directory
// backfill` registers them; then repeated creates return them, lookups find
// them, another body is refused, and a second run finds everything there.
// Then buckets move from shard 1 to shard 2 under create and lookup load:
// every acknowledged order is found after the move, each key has one order,
// keys of the moving buckets were refused (503) while frozen and nothing
// else was, and shard 1 keeps no copy.
func TestDirectoryBackfillAndMove(t *testing.T) {
	c := startCluster(t, options{units: 2, replicas: 1, shards: 2, shardReplicas: 1})
	api := newClient(t, c, 0)
	mchid := c.Credentials.Merchants[0].Mchid
	legacy := makeLegacy(t, c, mchid, 15)
	var legacyRefunds int
	for _, l := range legacy {
		if l.refundNo != "" {
			legacyRefunds++
		}
	}
	want(t, "a legacy order before the backfill", api.call("GET", "/v3/orders/out-trade-no/"+legacy[0].out, nil), 404, "RESOURCE_NOT_EXISTS")
	want(t, "a legacy refund before the backfill", api.call("GET", "/v3/refunds/"+legacy[0].refundNo, nil), 404, "RESOURCE_NOT_EXISTS")

	orders, refunds, res := backfillTotals(t, c)
	if !res.Verified || orders.Registered != int64(len(legacy)) || orders.Verified != int64(len(legacy)) || orders.Conflicts != 0 ||
		refunds.Registered != int64(legacyRefunds) || refunds.Verified != int64(legacyRefunds) {
		t.Fatalf("backfill: verified %v, orders %+v, refunds %+v; want %d orders and %d refunds registered", res.Verified, orders, refunds, len(legacy), legacyRefunds)
	}
	for _, l := range legacy {
		r := api.call("POST", "/v3/orders", createBody(l.out, l.total))
		if r.status != 200 || r.str("order_no") != l.orderNo {
			t.Fatalf("repeated create of legacy %s: %d %v, want its order %s", l.out, r.status, r.body, l.orderNo)
		}
		if r := api.call("GET", "/v3/orders/out-trade-no/"+l.out, nil); r.status != 200 || r.str("order_no") != l.orderNo {
			t.Fatalf("lookup of legacy %s: %d %v", l.out, r.status, r.body)
		}
		if l.refundNo != "" {
			if r := api.call("GET", "/v3/refunds/"+l.refundNo, nil); r.status != 200 || r.str("order_no") != l.refunds {
				t.Fatalf("lookup of legacy refund %s: %d %v", l.refundNo, r.status, r.body)
			}
		}
	}
	want(t, "a legacy key with another body", api.call("POST", "/v3/orders", createBody(legacy[1].out, 1)), 409, "OUT_TRADE_NO_USED")
	orders, refunds, _ = backfillTotals(t, c)
	if orders.Registered+refunds.Registered != 0 || orders.Already != int64(len(legacy)) || refunds.Already != int64(legacyRefunds) {
		t.Fatalf("second backfill: orders %+v, refunds %+v; want everything already there", orders, refunds)
	}

	// The move: buckets 0-1023, half of shard 1, under load.
	moving := routing.BucketRange{From: 0, To: 1023}
	legacyMoving := 0
	for _, l := range legacy {
		if moving.Contains(tradeunit.MerchantKey{Mchid: mchid, Kind: tradeunit.KeyOrder, Value: l.out}.Bucket()) {
			legacyMoving++
		}
	}
	if legacyMoving == 0 {
		t.Fatal("no legacy key is in the buckets that move")
	}
	load := startDirLoad(api, mchid, legacy, moving, 4)
	load.waitFor(t, 100)
	var mv admin.MoveResult
	err, stderr := tradeunitAdmin(t, c, &mv, "directory", "move", "--buckets", "0-1023", "--to", "2")
	if err != nil {
		load.halt()
		t.Fatalf("move: %v: %s\n%+v", err, stderr, mv)
	}
	load.waitFor(t, load.acked()+100) // creates and lookups go on after the switch
	acked, ev := load.halt()
	for _, s := range mv.Steps {
		t.Logf("move %-8s %8.1fms  %s", s.Name, s.TookMS, s.Detail)
	}
	t.Logf("load: %d orders acknowledged; %d requests refused as frozen (keys of the moving buckets), %d other failures",
		len(acked), ev.frozen.Load(), ev.other.Load())
	if mv.From != 1 || mv.To != 2 || mv.Copied == 0 || mv.Deleted != mv.Copied || len(mv.Kept) != 0 {
		t.Fatalf("move result %+v", mv)
	}
	if errs := ev.errors(); len(errs) > 0 {
		t.Fatalf("the load saw %d wrong answers: %s", len(errs), strings.Join(errs[:min(10, len(errs))], "; "))
	}
	if ev.frozen.Load() == 0 {
		t.Fatal("no request for a key of the moving buckets was refused while they were frozen")
	}
	if n := ev.other.Load(); n > 0 {
		t.Fatalf("%d requests failed for keys outside the moving buckets, or with another error than the freeze's: %s",
			n, strings.Join(ev.others, "; "))
	}

	// Nothing lost: every acknowledged order, and every legacy one, is
	// found by its key and is its key's only order.
	verifyOneOrderPerKey(t, c, api, mchid, acked)
	d := waitTable(t, c, func(d *routing.Directory) bool { s, frozen := d.ShardOf(0); return s.Shard == 2 && !frozen })
	if s, _ := d.Shard(1); admin.FormatRanges(s.Buckets) != "1024-2047" || len(s.Frozen) != 0 {
		t.Fatalf("shard 1 after the move: %+v", s)
	}
	shard1, _ := c.Topology().Shard(1)
	src, err := dirstore.OpenReadOnly(context.Background(), shard1.Primary, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for b := moving.From; b <= moving.To; b++ {
		if n, err := src.CountBucket(context.Background(), b); err != nil || n != 0 {
			t.Fatalf("shard 1 keeps %d entries of bucket %d (%v)", n, b, err)
		}
	}
	shard2, _ := c.Topology().Shard(2)
	dst, err := dirstore.OpenReadOnly(context.Background(), shard2.Primary, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	var onTarget int64
	for b := moving.From; b <= moving.To; b++ {
		n, err := dst.CountBucket(context.Background(), b)
		if err != nil {
			t.Fatal(err)
		}
		onTarget += n
	}
	if onTarget <= mv.Copied {
		t.Fatalf("shard 2 holds %d entries of the moved buckets, %d of them copied: no create after the switch wrote there", onTarget, mv.Copied)
	}
	orders, refunds, res = backfillTotals(t, c)
	if !res.Verified || orders.Already != int64(len(legacy)) || refunds.Already != int64(legacyRefunds) || orders.Registered != 0 {
		t.Fatalf("backfill after the move: verified %v, orders %+v, refunds %+v", res.Verified, orders, refunds)
	}
}

// waitTable polls the cluster's routing table until ok holds of its
// directory (the admin command wrote the file; the cluster polls it).
func waitTable(t *testing.T, c *cluster.Cluster, ok func(*routing.Directory) bool) *routing.Directory {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if d := c.Routes().Directory; ok(d) {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cluster's table never showed the change: %+v", c.Routes().Directory)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// verifyOneOrderPerKey checks every acknowledged key: its lookup returns
// its acknowledged order, and no unit holds another order of it (but an
// orphan closed as superseded).
func verifyOneOrderPerKey(t *testing.T, c *cluster.Cluster, api *client, mchid string, acked map[string]string) {
	t.Helper()
	ctx := context.Background()
	var stores []tradeunit.Store
	for _, u := range c.Topology().Units {
		s, err := sqlstore.OpenReadOnly(ctx, u.Primary, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores = append(stores, s)
	}
	var lost, doubled []string
	for out, no := range acked {
		if r := api.call("GET", "/v3/orders/out-trade-no/"+out, nil); r.status != 200 || r.str("order_no") != no {
			lost = append(lost, fmt.Sprintf("%s: %d %s, acknowledged %s", out, r.status, r.str("order_no"), no))
		}
		for _, s := range stores {
			o, err := s.OrderByOutTradeNo(ctx, mchid, out)
			switch {
			case tradeunit.IsCode(err, tradeunit.CodeNotFound), err == nil && o.OrderNo == no:
			case err != nil:
				t.Fatal(err)
			case !orphanClosed(t, s, o):
				doubled = append(doubled, fmt.Sprintf("%s: %s besides %s", out, o.OrderNo, no))
			}
		}
	}
	t.Logf("%d keys checked: %d lost, %d with a second order", len(acked), len(lost), len(doubled))
	if len(lost)+len(doubled) > 0 {
		t.Fatalf("lost %v; doubled %v", lost[:min(10, len(lost))], doubled[:min(10, len(doubled))])
	}
}

// dirLoad creates orders with new keys, repeats creates of known ones and
// looks them up, each worker retrying a refused request (503) as a client
// must, and checks every answer against what it was told before.
type dirLoad struct {
	api    *client
	mchid  string
	moving routing.BucketRange
	stop   atomic.Bool
	wg     sync.WaitGroup
	ev     dirEvents

	mu    sync.Mutex
	known map[string]string // out_trade_no → order_no acknowledged
	keys  []string
	total map[string]int64
}

// dirEvents counts how requests ended.
type dirEvents struct {
	frozen, other atomic.Int64 // refusals of keys in the moving buckets; any other failure
	mu            sync.Mutex
	wrong         []string // answers that contradict an earlier one
	others        []string // the first other failures, to say what they were
}

func (e *dirEvents) errors() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.wrong)
}

func startDirLoad(api *client, mchid string, legacy []legacyRecord, moving routing.BucketRange, workers int) *dirLoad {
	l := &dirLoad{api: api, mchid: mchid, moving: moving, known: map[string]string{}, total: map[string]int64{}}
	for _, r := range legacy {
		l.known[r.out], l.total[r.out] = r.orderNo, r.total
		l.keys = append(l.keys, r.out)
	}
	for w := range workers {
		l.wg.Go(func() { l.work(w) })
	}
	return l
}

func (l *dirLoad) work(w int) {
	rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
	for i := 0; !l.stop.Load(); i++ {
		switch n := rng.IntN(10); {
		case n < 5:
			out := fmt.Sprintf("mv-%d-%d-%d", w, i, time.Now().UnixNano()%1e9)
			l.create(out, 100+int64(i%7), "")
		default:
			l.mu.Lock()
			out := l.keys[rng.IntN(len(l.keys))]
			no, total := l.known[out], l.total[out]
			l.mu.Unlock()
			if n < 8 {
				l.create(out, total, no)
			} else {
				l.lookup(out, no)
			}
		}
	}
}

// inMoving reports whether out's key is in the moving buckets.
func (l *dirLoad) inMoving(out string) bool {
	return l.moving.Contains(tradeunit.MerchantKey{Mchid: l.mchid, Kind: tradeunit.KeyOrder, Value: out}.Bucket())
}

// retry counts a failed request and reports whether to make it again: a
// refusal of a frozen key is retried until the move ends; any other
// failure is counted, and retried if it was a 503.
func (l *dirLoad) retry(out string, r response, err error) bool {
	// The proxy refuses a frozen key itself ("moving"), or the shard does
	// when its table is ahead of the proxy's: frozen ("being moved"), or
	// switched away from it ("it moved").
	if err == nil && r.status == 503 && l.inMoving(out) && strings.Contains(r.str("message"), "mov") {
		l.ev.frozen.Add(1)
		return !l.stop.Load()
	}
	l.ev.other.Add(1)
	l.ev.mu.Lock()
	if len(l.ev.others) < 5 {
		l.ev.others = append(l.ev.others, fmt.Sprintf("%s (moving bucket %v): %d %v, %v", out, l.inMoving(out), r.status, r.body, err))
	}
	l.ev.mu.Unlock()
	if err != nil {
		l.wrong("%s: %v", out, err)
	} else if r.status != 503 {
		l.wrong("%s: %d %v", out, r.status, r.body)
	}
	return err == nil && r.status == 503 && !l.stop.Load()
}

func (l *dirLoad) wrong(format string, args ...any) {
	l.ev.mu.Lock()
	l.ev.wrong = append(l.ev.wrong, fmt.Sprintf(format, args...))
	l.ev.mu.Unlock()
}

// create creates out until it is acknowledged; want is the order it must
// be ("" for a new key).
func (l *dirLoad) create(out string, total int64, want string) {
	for {
		r, err := l.api.try("POST", "/v3/orders", createBody(out, total))
		if err == nil && r.status == 200 {
			no := r.str("order_no")
			if want != "" && no != want {
				l.wrong("create of %s returned %s, was %s", out, no, want)
			}
			if want == "" {
				l.mu.Lock()
				l.known[out], l.total[out] = no, total
				l.keys = append(l.keys, out)
				l.mu.Unlock()
			}
			return
		}
		if !l.retry(out, r, err) {
			return
		}
		time.Sleep(20 * time.Millisecond) // a client's back-off before it retries
	}
}

func (l *dirLoad) lookup(out, want string) {
	for {
		r, err := l.api.try("GET", "/v3/orders/out-trade-no/"+out, nil)
		if err == nil && r.status == 200 {
			if r.str("order_no") != want {
				l.wrong("lookup of %s returned %s, was %s", out, r.str("order_no"), want)
			}
			return
		}
		if !l.retry(out, r, err) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (l *dirLoad) acked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.known)
}

// waitFor polls until n orders are acknowledged.
func (l *dirLoad) waitFor(t *testing.T, n int) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); l.acked() < n; {
		if time.Now().After(deadline) {
			l.halt()
			t.Fatalf("the load acknowledged %d orders in 2 minutes, want %d", l.acked(), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// halt stops the load and returns every key acknowledged (the legacy ones
// included) with its order.
func (l *dirLoad) halt() (map[string]string, *dirEvents) {
	l.stop.Store(true)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.known, &l.ev
}
