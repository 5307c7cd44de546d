package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"tradeunit"
	"tradeunit/admin"
	"tradeunit/bench"
	"tradeunit/cluster"
	"tradeunit/dsn"
	"tradeunit/internal/etcdtest"
	"tradeunit/routing"
)

// TestOnlineScaleOutOnEtcd drives steady create/pay/query load through a
// cluster whose routing table is in etcd, adds two units mid-run, and checks
// that no request fails, that the new units take their fair share of new
// orders within seconds, and that every order is intact. It also counts what
// hash-mod-N sharding would have had to move for the same growth.
func TestOnlineScaleOutOnEtcd(t *testing.T) {
	etcd := etcdtest.Start(t, 1)
	spec := etcd.Spec("/scaleout")
	c := startCluster(t, options{units: 3, replicas: 1, routesSpec: spec, etcd: etcd, balanceWindow: 2 * time.Second})
	ctx := context.Background()
	target, err := bench.OpenTarget(ctx, c.ProxyURL, c.Credentials.Merchants[0].APIKey, "", 0, 8)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Release()
	mix, _ := bench.ParseMix("create=4,pay=3,query=6")

	// The run lasts until enough orders were created after the scale-out
	// (at most a minute); it ends the way a run of fixed duration does.
	runCtx, stopRun := context.WithCancel(ctx)
	var (
		res    *bench.Result
		runErr error
		wg     sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		res, runErr = bench.Run(runCtx, bench.Config{Target: target, Concurrency: 8, Duration: time.Minute, Mix: mix})
	}()
	t.Cleanup(func() { stopRun(); wg.Wait() })
	waitFor(t, 20*time.Second, "orders on every unit before the scale-out", func() bool {
		n := createsPerUnit(t, c)
		return n[1] >= 20 && n[2] >= 20 && n[3] >= 20
	})
	before := ordersPerUnit(t, c.Units)
	added := time.Now()
	for i := 0; i < 2; i++ {
		if _, err := c.AddUnit(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
	waitPlan(t, c, c.Routes().Revision, 0)
	t.Logf("the proxy's plan had the new units %v after the first was started", time.Since(added).Round(time.Millisecond))

	// The new units' share of the creates from then on, over enough of
	// them that sampling noise cannot pass for imbalance: with 500, one
	// standard deviation of a 40% share is 2.2 points, and the threshold
	// is 3.6 of them below it.
	const n = 500
	from := createsPerUnit(t, c)
	since := func() (total, newer float64) {
		for id, v := range createsPerUnit(t, c) {
			total += v - from[id]
			if id > 3 {
				newer += v - from[id]
			}
		}
		return total, newer
	}
	waitFor(t, 45*time.Second, fmt.Sprintf("%d creates after the scale-out", n), func() bool {
		total, _ := since()
		return total >= n
	})
	stopRun()
	wg.Wait()
	if runErr != nil {
		t.Fatal(runErr)
	}
	v := res.Verify(ctx, target)
	if res.Errors != 0 || !v.OK() {
		t.Fatalf("scale-out under load: %d failed requests %v, verification %+v; want none and every order intact",
			res.Errors, res.ErrorsByCode, v)
	}
	total, newer := since()
	share := newer / total
	t.Logf("%d requests, 0 failed; since the proxy had the new units: they took %.0f of %.0f new orders (%.0f%%; fair share 40%%)",
		res.Requests, newer, total, 100*share)
	if share < 0.32 {
		t.Fatalf("new units took %.0f%% of %.0f new orders, want at least 32%% (fair share 40%%); the proxy's selection now:\n%s",
			100*share, total, selectionMetrics(scrape(t, c.ProxyURL+"/metrics")))
	}

	// Moved rows: none here. Hash-mod-N sharding growing 3 → 5 shards moves
	// every row whose hash mod 3 differs from its hash mod 5.
	var rows, moved int
	for _, nos := range before {
		for _, no := range nos {
			rows++
			h := fnv.New64a()
			h.Write([]byte(no))
			if v := h.Sum64(); v%3 != v%5 {
				moved++
			}
		}
	}
	t.Logf("orders existing before the scale-out: %d; moved by tradeunit: 0; hash-mod-N (3→5) would move %d (%.0f%%)",
		rows, moved, 100*float64(moved)/float64(rows))
	after := ordersPerUnit(t, c.Units[:3])
	for id, nos := range before {
		if len(after[id]) < len(nos) {
			t.Fatalf("unit %d had %d orders before the scale-out and %d after", id, len(nos), len(after[id]))
		}
	}
}

// ordersPerUnit lists every merchant order number in each unit's SQLite file.
func ordersPerUnit(t *testing.T, units []*cluster.Unit) map[tradeunit.UnitID][]string {
	t.Helper()
	out := map[tradeunit.UnitID][]string{}
	for _, u := range units {
		db := openSQLite(t, u.DSN)
		rows, err := db.Query("SELECT order_no FROM orders WHERE mchid <> ?", tradeunit.ProbeMchid)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var no string
			rows.Scan(&no)
			out[u.ID] = append(out[u.ID], no)
		}
		rows.Close()
	}
	return out
}

// createsPerUnit reads, from the proxy's metrics, how many creates each
// unit of the routing table has acknowledged.
func createsPerUnit(t *testing.T, c *cluster.Cluster) map[tradeunit.UnitID]float64 {
	t.Helper()
	body := scrape(t, c.ProxyURL+"/metrics")
	out := map[tradeunit.UnitID]float64{}
	for _, u := range c.Routes().Units {
		out[u.ID] = metric(body, "tradeunit_proxy_unit_requests_total", "unit", u.ID.String(), "op", "create", "outcome", "ok")
	}
	return out
}

func openSQLite(t *testing.T, d dsn.DSN) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", d.Path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestProxyFollowsEtcdAndSurvivesItsLoss: a drain made through etcd reaches
// the proxy within a second (measured), and the proxy keeps serving from its
// last good table while etcd is down.
func TestProxyFollowsEtcdAndSurvivesItsLoss(t *testing.T) {
	etcd := etcdtest.Start(t, 1)
	spec := etcd.Spec("/follow")
	c := startCluster(t, options{units: 3, replicas: 1, routesSpec: spec, etcd: etcd})
	api := newClient(t, c, 0)
	ctx := context.Background()
	opts := routing.DefaultOptions()
	opts.TLS = etcd.Admin()
	ed, err := routing.OpenEtcd(ctx, spec, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer ed.Close()
	a := &admin.Admin{Routes: ed, Who: "e2e"}
	if _, err := a.Drain(ctx, 2, false); err != nil {
		t.Fatal(err)
	}
	drained := time.Now()
	// The proxy's own copy of the table (it runs in this process).
	waitFor(t, time.Second, "the proxy sees the drain", func() bool {
		u, _ := c.Routes().Unit(2)
		return !u.AcceptNew
	})
	t.Logf("the proxy applied the drain %v after it was written to etcd", time.Since(drained))
	for i := 0; i < 50; i++ {
		r := api.call("POST", "/v3/orders", createBody(uniq("follow"), 100))
		want(t, "create after drain", r, 200, "")
		if unitOf(r) == 2 {
			t.Fatal("a create landed on the drained unit after the proxy applied the drain")
		}
	}

	etcd.Members[0].Kill()
	for i := 0; i < 50; i++ {
		r := api.call("POST", "/v3/orders", createBody(uniq("no-etcd"), 100))
		want(t, "create while etcd is down", r, 200, "")
		if unitOf(r) == 2 {
			t.Fatal("a create landed on the drained unit while etcd was down: the proxy lost its table")
		}
	}
}

// selectionMetrics returns the lines of a proxy's exposition that say how
// it weighs the units for new orders and which calls failed, for a failure
// message.
func selectionMetrics(body string) string {
	var b strings.Builder
	for _, line := range strings.Split(body, "\n") {
		for _, name := range []string{"tradeunit_proxy_unit_weight{", "tradeunit_proxy_unit_suspect{", "tradeunit_proxy_unit_recent_requests{", "tradeunit_proxy_create_retries_total"} {
			if strings.HasPrefix(line, name) {
				b.WriteString(line + "\n")
			}
		}
		if strings.HasPrefix(line, "tradeunit_proxy_unit_requests_total{") && strings.Contains(line, `outcome="failed"`) {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}
