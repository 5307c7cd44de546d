package e2e

import (
	"context"
	"database/sql"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"tradeunit"
	"tradeunit/cluster"
	"tradeunit/daemon/proxyd"
	"tradeunit/health"
	"tradeunit/pki"
)

// TestProbeOrdersAndMetrics: the checker's probes are real orders of the
// probe merchant, closed by the probe and deleted by the units after their
// retention; no merchant can see them; and every process serves its
// Prometheus metrics.
func TestProbeOrdersAndMetrics(t *testing.T) {
	const retention = time.Second
	// A probe whose call times out leaves its order open (the janitor
	// deletes it after the retention): with calls bounded by half the
	// 100 ms interval, a stall of the machine's disk did that, and more
	// orders were open than probes in flight. A second bounds them here.
	c := startCluster(t, options{units: 2, replicas: 2, unitMetrics: true, probeRetention: retention,
		health: checker(100*time.Millisecond, time.Second, 500*time.Millisecond)})
	api := newClient(t, c, 0)
	for i := 0; i < 5; i++ {
		api.mustCreate(uniq("metrics"), 100)
	}
	waitReport(t, c.HealthURL, 5*time.Second, "every unit healthy", allHealthy(2))
	time.Sleep(2*retention + 500*time.Millisecond) // probes keep coming; the janitors run every retention/5

	db, err := sql.Open("sqlite", "file:"+filepath.Join(c.Dir, "unit-1.db")+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var (
		probes, open int
		oldest       int64
		sample       string
	)
	err = db.QueryRow(`SELECT COUNT(*), COALESCE(SUM(trade_state <> 'CLOSED'), 0), COALESCE(MIN(create_time), 0), COALESCE(MAX(out_trade_no), '')
		FROM orders WHERE mchid = ?`, tradeunit.ProbeMchid).Scan(&probes, &open, &oldest, &sample)
	if err != nil {
		t.Fatal(err)
	}
	age := time.Since(time.UnixMicro(oldest))
	t.Logf("unit 1 holds %d probe orders (%d not closed), the oldest %v old", probes, open, age.Round(time.Millisecond))
	if probes == 0 || open > 2 {
		t.Fatalf("unit 1 holds %d probe orders, %d not closed; want some, all closed but those in flight", probes, open)
	}
	if age > retention+retention/5+time.Second {
		t.Fatalf("oldest probe order is %v old, want deleted after the retention of %v", age, retention)
	}
	want(t, "a merchant asks for a probe order", api.call("GET", "/v3/orders/out-trade-no/"+sample, nil), 404, "RESOURCE_NOT_EXISTS")

	proxy := scrape(t, c.ProxyURL+"/metrics")
	checker := scrapeInternal(t, c, c.HealthURL+"/metrics")
	unit := scrapeInternal(t, c, c.Unit(1).Replicas[0].MetricsURL())
	for _, m := range []struct {
		body, name string
		labels     []string
	}{
		{proxy, "tradeunit_proxy_http_requests_total", []string{"op", "create", "status", "200"}},
		{proxy, "tradeunit_proxy_unit_requests_total", []string{"op", "create", "outcome", "ok"}},
		{proxy, "tradeunit_proxy_unit_request_duration_seconds_count", []string{"op", "create"}},
		{proxy, "tradeunit_proxy_selected_total", nil},
		{proxy, "tradeunit_proxy_unit_weight", []string{"unit", "1"}},
		{proxy, "tradeunit_proxy_health_checker_reachable", nil},
		{checker, "tradeunit_health_probes_total", []string{"unit", "1", "result", "ok"}},
		{checker, "tradeunit_health_probe_latency_seconds_count", []string{"unit", "2"}},
		{checker, "tradeunit_health_unit_success_rate", []string{"unit", "2"}},
		{unit, "tradeunit_unit_rpc_requests_total", []string{"method", "CreateOrder", "code", "OK"}},
		{unit, "tradeunit_unit_rpc_duration_seconds_count", []string{"method", "CloseOrder"}},
	} {
		if v := metric(m.body, m.name, m.labels...); v <= 0 {
			t.Errorf("metric %s%v: got %v, want > 0", m.name, m.labels, v)
		}
	}
	for _, m := range []string{"tradeunit_proxy_create_retries_total", "tradeunit_health_partition_panic"} {
		if !strings.Contains(proxy+checker, m) {
			t.Errorf("no metric %s", m)
		}
	}
	deleted := 0.0
	for _, u := range c.Units {
		for _, r := range u.Replicas {
			deleted += metric(scrapeInternal(t, c, r.MetricsURL()), "tradeunit_unit_probe_orders_deleted_total")
		}
	}
	if deleted == 0 {
		t.Error("no replica counted deleted probe orders")
	}
}

// TestHealthAndProxyCommands runs `tradeunit health` and `tradeunit proxy
// --health` as processes against a cluster's routing table: the checker
// probes every unit and the proxy follows it.
func TestHealthAndProxyCommands(t *testing.T) {
	c := startCluster(t, options{units: 2, replicas: 1})
	// Probe calls bounded by a second, not half the interval: under the
	// race detector on a loaded machine, 100 ms ejected a healthy unit.
	hcfg := checker(200*time.Millisecond, time.Second, time.Second)
	hcfg.Routes = c.RoutesPath
	hcfg.TLS = issueTLS(t, c, pki.RoleChecker, "checker-cmd")
	checker := cluster.NewProcess(binary, c.Dir, "health", func(listen, addrFile string) []string {
		cfg := *hcfg
		cfg.Listen, cfg.AddrFile = listen, addrFile
		return cfg.Args()
	})
	if err := checker.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer checker.Stop()
	healthURL := "https://" + checker.Addr()
	internalClients.Store(healthURL, adminClient(t, c))
	waitReport(t, healthURL, 5*time.Second, "the health command judges every unit", allHealthy(2))

	pcfg := proxyd.DefaultConfig()
	pcfg.Routes, pcfg.Merchants, pcfg.Proxy.Health = c.RoutesPath, filepath.Join(c.Dir, "dev-credentials.json"), healthURL
	pcfg.TLS = issueTLS(t, c, pki.RoleProxy, "proxy-cmd")
	px := cluster.NewProcess(binary, c.Dir, "proxy", func(listen, addrFile string) []string {
		cfg := pcfg
		cfg.Listen, cfg.AddrFile = listen, addrFile
		return cfg.Args()
	})
	if err := px.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer px.Stop()
	api := &client{t: t, base: "http://" + px.Addr(), key: c.Credentials.Merchants[0].APIKey, http: &http.Client{Timeout: 10 * time.Second}}
	api.mustCreate(uniq("cmd"), 100)
	waitFor(t, 5*time.Second, "the proxy follows the checker", func() bool {
		return metric(scrape(t, api.base+"/metrics"), "tradeunit_proxy_health_checker_reachable") == 1
	})
	r := getReport(t, healthURL)
	if u := reportUnit(r, 1); u.Probe != "order" || u.Samples == 0 || len(u.Replicas) != 1 || !u.Replicas[0].OK {
		t.Fatalf("unit 1 in the report: %+v", u)
	}
	if r.Units[0].Verdict != health.Healthy {
		t.Fatalf("report: %+v", r)
	}
}
