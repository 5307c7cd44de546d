package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tradeunit"
	"tradeunit/cluster"
	"tradeunit/health"
)

// internalClients holds, by base URL, the client that reaches an internal
// endpoint over mutual TLS with the operator's certificate of its cluster
// (registered by startCluster and startDev); others get a plain one.
var internalClients sync.Map

// internalClient returns the client registered for the base URL url
// starts with.
func internalClient(url string) *http.Client {
	client := http.DefaultClient
	internalClients.Range(func(base, c any) bool {
		if strings.HasPrefix(url, base.(string)) {
			client = c.(*http.Client)
			return false
		}
		return true
	})
	return client
}

// getReport reads the health checker's API once.
func getReport(t *testing.T, base string) health.Report {
	t.Helper()
	resp, err := internalClient(base).Get(base + "/v1/units")
	if err != nil {
		t.Fatalf("health API: %v", err)
	}
	defer resp.Body.Close()
	var r health.Report
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("health API: %v", err)
	}
	return r
}

// waitReport long-polls the checker until cond holds, and returns the
// report and when it was seen.
func waitReport(t *testing.T, base string, timeout time.Duration, what string, cond func(health.Report) bool) (health.Report, time.Time) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var version uint64
	for time.Now().Before(deadline) {
		resp, err := internalClient(base).Get(fmt.Sprintf("%s/v1/units?wait=%d&timeout=500ms", base, version))
		if err != nil {
			t.Fatalf("health API: %v", err)
		}
		var r health.Report
		err = json.NewDecoder(resp.Body).Decode(&r)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("health API: %v", err)
		}
		if cond(r) {
			return r, time.Now()
		}
		version = r.Version
	}
	last := getReport(t, base)
	data, _ := json.MarshalIndent(last, "", " ")
	t.Fatalf("%s: not within %v; last report:\n%s", what, timeout, data)
	return health.Report{}, time.Time{}
}

func reportUnit(r health.Report, id tradeunit.UnitID) health.UnitReport {
	for _, u := range r.Units {
		if u.Unit == id {
			return u
		}
	}
	return health.UnitReport{}
}

func allHealthy(n int) func(health.Report) bool {
	return func(r health.Report) bool {
		if len(r.Units) != n {
			return false
		}
		for _, u := range r.Units {
			if u.Verdict != health.Healthy {
				return false
			}
		}
		return true
	}
}

// waitPlan waits until the proxy's selection plan was built from the
// routing table's revision rev or a later one, and from the checker's
// report version or a later one (0: any).
func waitPlan(t *testing.T, c *cluster.Cluster, rev int64, version uint64) {
	t.Helper()
	waitFor(t, 5*time.Second, fmt.Sprintf("the proxy's plan built from routing revision %d and checker report %d", rev, version), func() bool {
		body := scrape(t, c.ProxyURL+"/metrics")
		return metric(body, "tradeunit_proxy_plan_revision") >= float64(rev) &&
			metric(body, "tradeunit_proxy_checker_version") >= float64(version)
	})
}

// scrape returns a Prometheus text exposition.
func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := internalClient(url).Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("scrape %s: %s", url, resp.Status)
	}
	return string(body)
}

// metric sums the samples of name whose labels include every pair of
// labels ("unit", "2", ...), in a text exposition.
func metric(body, name string, labels ...string) float64 {
	var sum float64
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		var set string
		switch {
		case strings.HasPrefix(rest, "{"):
			end := strings.Index(rest, "}")
			set, rest = rest[1:end], rest[end+1:]
		case strings.HasPrefix(rest, " "):
		default:
			continue // another metric with this prefix
		}
		ok := true
		for i := 0; i+1 < len(labels); i += 2 {
			ok = ok && strings.Contains(","+set+",", ","+labels[i]+`="`+labels[i+1]+`",`)
		}
		if !ok {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64); err == nil {
			sum += v
		}
	}
	return sum
}

// created is one create the load generator made.
type created struct {
	start, end time.Time
	status     int
	code       string
	message    string
	orderNo    string
	outTradeNo string
	unit       tradeunit.UnitID
	abandoned  []tradeunit.UnitID
}

// load creates orders from several workers until stopped.
type load struct {
	t    *testing.T
	api  *client
	stop atomic.Bool
	wg   sync.WaitGroup
	seq  atomic.Int64
	// started holds, per worker of startLoad, when its current create
	// started (UnixNano).
	started []atomic.Int64

	mu      sync.Mutex
	results []created
}

// startLoad starts workers creating orders as api's merchant; prefix keeps
// out_trade_no unique across loads.
func startLoad(t *testing.T, api *client, workers int, prefix string) *load {
	l := &load{t: t, api: api, started: make([]atomic.Int64, workers)}
	for w := 0; w < workers; w++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for !l.stop.Load() {
				l.started[w].Store(time.Now().UnixNano())
				l.one(fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano()%1e9, l.seq.Add(1)))
			}
		}()
	}
	return l
}

// settle waits until every worker has started a create at or after since:
// then every create that started before since has ended and is in the
// results.
func (l *load) settle(since time.Time) {
	l.t.Helper()
	waitFor(l.t, 10*time.Second, "the creates in flight at "+since.Format("15:04:05.000")+" to end", func() bool {
		for i := range l.started {
			if l.started[i].Load() < since.UnixNano() {
				return false
			}
		}
		return true
	})
}

// waitCreates waits until the load has made n successful creates, at least
// one on each unit of on (if any).
func (l *load) waitCreates(n int, on ...tradeunit.UnitID) {
	l.t.Helper()
	waitFor(l.t, 10*time.Second, fmt.Sprintf("%d creates, some on each of units %v", n, on), func() bool {
		rs := l.snapshot()
		counts := perUnit(rs)
		for _, u := range on {
			if counts[u] == 0 {
				return false
			}
		}
		return len(rs)-len(failed(rs)) >= n
	})
}

// one makes one create and records it; it never fails the test by itself.
func (l *load) one(out string) created {
	c := created{start: time.Now(), outTradeNo: out}
	r, err := l.api.try("POST", "/v3/orders", createBody(out, 100))
	c.end = time.Now()
	if err != nil {
		c.code = err.Error()
	} else {
		c.status, c.code, c.message, c.orderNo, c.unit = r.status, r.code(), r.str("message"), r.str("order_no"), unitOf(r)
		if ab, ok := r.body["abandoned_units"].([]any); ok {
			for _, u := range ab {
				c.abandoned = append(c.abandoned, tradeunit.UnitID(u.(float64)))
			}
		}
	}
	l.mu.Lock()
	l.results = append(l.results, c)
	l.mu.Unlock()
	return c
}

// halt stops the workers and returns every result.
func (l *load) halt() []created {
	l.stop.Store(true)
	l.wg.Wait()
	return l.snapshot()
}

func (l *load) snapshot() []created {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]created(nil), l.results...)
}

// between returns the creates that started in [from, to).
func between(rs []created, from, to time.Time) []created {
	var out []created
	for _, r := range rs {
		if !r.start.Before(from) && r.start.Before(to) {
			out = append(out, r)
		}
	}
	return out
}

// perUnit counts successful creates per unit.
func perUnit(rs []created) map[tradeunit.UnitID]int {
	out := map[tradeunit.UnitID]int{}
	for _, r := range rs {
		if r.status == 200 {
			out[r.unit]++
		}
	}
	return out
}

// failed returns the creates that did not succeed.
func failed(rs []created) []created {
	var out []created
	for _, r := range rs {
		if r.status != 200 {
			out = append(out, r)
		}
	}
	return out
}

// createMany makes n creates from workers goroutines and returns them.
func createMany(t *testing.T, api *client, n, workers int, prefix string) []created {
	t.Helper()
	l := &load{t: t, api: api}
	var next atomic.Int64
	for w := 0; w < workers; w++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				l.one(fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano()%1e9, i))
			}
		}()
	}
	l.wg.Wait()
	return l.snapshot()
}

// checkAcknowledged verifies the client's view after a fault: every order
// the API acknowledged is there, once, with the number it was given. By
// out_trade_no (which must return the same order, not an orphan) it checks
// every create that was retried on another unit, and one in ten of the rest.
func checkAcknowledged(t *testing.T, api *client, rs []created) {
	t.Helper()
	seen := map[string]bool{}
	var todo []created
	for _, r := range rs {
		if r.status != 200 {
			continue
		}
		if seen[r.orderNo] {
			t.Fatalf("order number %s acknowledged twice", r.orderNo)
		}
		seen[r.orderNo] = true
		todo = append(todo, r)
	}
	var (
		next    atomic.Int64
		mu      sync.Mutex
		problem string
		wg      sync.WaitGroup
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		if problem == "" {
			problem = fmt.Sprintf(format, args...)
		}
		mu.Unlock()
	}
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(len(todo)); i = next.Add(1) - 1 {
				r := todo[i]
				got, err := api.try("GET", "/v3/orders/"+r.orderNo, nil)
				if err != nil || got.status != 200 {
					fail("acknowledged order %s: %v %d %v", r.orderNo, err, got.status, got.body)
					return
				}
				if len(r.abandoned) == 0 && i%10 != 0 {
					continue
				}
				byOut, err := api.try("GET", "/v3/orders/out-trade-no/"+r.outTradeNo, nil)
				if err != nil || byOut.status != 200 || byOut.str("order_no") != r.orderNo {
					fail("out_trade_no %s: %v %d returned %s, the create acknowledged %s", r.outTradeNo, err, byOut.status,
						byOut.str("order_no"), r.orderNo)
					return
				}
			}
		}()
	}
	wg.Wait()
	if problem != "" {
		t.Fatal(problem)
	}
}
