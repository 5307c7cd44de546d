package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"tradeunit"
	"tradeunit/admin"
	"tradeunit/cluster"
	"tradeunit/eventbus"
	"tradeunit/query"
)

// machineNATS is the NATS server of this kind of machine; a test that needs
// it fails under CI=true when it does not answer.
func machineNATS(t *testing.T) string {
	t.Helper()
	url := os.Getenv("TRADEUNIT_TEST_NATS")
	if url == "" {
		url = "nats://127.0.0.1:4222"
	}
	conn, err := net.DialTimeout("tcp", url[len("nats://"):], 2*time.Second)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("NATS at %s is required under CI=true: %v", url, err)
		}
		t.Skipf("NATS at %s not reachable: %v", url, err)
	}
	conn.Close()
	return url
}

// eventsOn returns an event flow over the bus at url, on a stream and
// subjects of this test's own (deleted when it ends), into the query
// store target.
func eventsOn(t *testing.T, url, target string) *cluster.Events {
	t.Helper()
	ev := cluster.DefaultEvents()
	suffix := randHex(4)
	ev.Bus.URL, ev.Bus.Stream, ev.Bus.Subject = url, "E2E_"+suffix, "e2e."+suffix
	ev.Bus.FetchWait = 200 * time.Millisecond
	ev.Relay.Relay.LeaseTTL = time.Second
	ev.Query.Store = target
	t.Cleanup(func() { deleteStream(url, ev.Bus) })
	return ev
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// deleteStream removes a test's stream from a shared server.
func deleteStream(url string, cfg eventbus.Config) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cfg.URL = url
	if b, err := eventbus.Open(ctx, cfg, discardLog()); err == nil {
		b.DeleteStream(ctx)
		b.Close()
	}
}

// natsProcess is a nats-server of the test's own, to stop and start again
// on the same port and store.
type natsProcess struct {
	t    *testing.T
	addr string
	dir  string
	cmd  *exec.Cmd
}

func startNATS(t *testing.T) *natsProcess {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		bin = "/usr/sbin/nats-server"
	}
	n := &natsProcess{t: t, addr: freePort(t), dir: t.TempDir()}
	n.start(bin)
	t.Cleanup(n.stop)
	return n
}

func (n *natsProcess) url() string { return "nats://" + n.addr }

func (n *natsProcess) start(bin string) {
	n.t.Helper()
	host, port, _ := net.SplitHostPort(n.addr)
	n.cmd = exec.Command(bin, "-a", host, "-p", port, "-js", "-sd", n.dir)
	n.cmd.Stdout, n.cmd.Stderr = nil, nil
	if err := n.cmd.Start(); err != nil {
		n.t.Fatalf("start nats-server: %v", err)
	}
	waitListening(n.t, n.addr, "nats-server")
}

func (n *natsProcess) restart() {
	n.t.Helper()
	n.start(n.cmd.Path)
}

// shutdown stops the server cleanly (SIGTERM), killing it if it has not
// exited within 10 s; it reports whether it had to.
func (n *natsProcess) shutdown() (killed bool) {
	n.cmd.Process.Signal(syscall.SIGTERM)
	exited := make(chan struct{})
	go func() { n.cmd.Wait(); close(exited) }()
	select {
	case <-exited:
		return false
	case <-time.After(10 * time.Second):
		n.cmd.Process.Signal(syscall.SIGKILL)
		<-exited
		return true
	}
}

func (n *natsProcess) stop() {
	if n.cmd != nil && n.cmd.Process != nil {
		n.cmd.Process.Signal(syscall.SIGKILL)
		n.cmd.Wait()
	}
}

// pgProcess is a PostgreSQL server of the test's own (a fresh cluster in a
// temporary directory, run as the postgres user), to stop and start again.
type pgProcess struct {
	t    *testing.T
	dir  string
	port string
	cmd  *exec.Cmd
}

func startPostgres(t *testing.T) *pgProcess {
	t.Helper()
	for _, bin := range []string{"initdb", "postgres", "runuser", "pg_isready"} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is required under CI=true: %v", bin, err)
			}
			t.Skipf("%s not installed", bin)
		}
	}
	base, err := os.MkdirTemp("", "tradeunit-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	os.Chmod(base, 0o755)
	dir := filepath.Join(base, "data")
	if out, err := exec.Command("install", "-d", "-o", "postgres", "-g", "postgres", "-m", "0700", dir).CombinedOutput(); err != nil {
		t.Fatalf("make %s: %v: %s", dir, err, out)
	}
	if out, err := exec.Command("runuser", "-u", "postgres", "--", "initdb", "-D", dir, "-A", "trust", "-U", "postgres").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v: %s", err, out)
	}
	_, port, _ := net.SplitHostPort(freePort(t))
	p := &pgProcess{t: t, dir: dir, port: port}
	p.start()
	t.Cleanup(p.stop)
	return p
}

func (p *pgProcess) url() string {
	return "postgres://postgres@127.0.0.1:" + p.port + "/postgres?sslmode=disable"
}

func (p *pgProcess) start() {
	p.t.Helper()
	p.cmd = exec.Command("runuser", "-u", "postgres", "--", "postgres", "-D", p.dir, "-p", p.port,
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="+p.dir, "-c", "fsync=on")
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("start postgres: %v", err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for exec.Command("pg_isready", "-q", "-h", "127.0.0.1", "-p", p.port).Run() != nil {
		if time.Now().After(deadline) {
			p.t.Fatalf("postgres on port %s not ready within 60s", p.port)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// shutdown stops the server with PostgreSQL's fast shutdown (SIGINT, to its
// process group: runuser does not pass signals on).
func (p *pgProcess) shutdown() {
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGINT)
	p.cmd.Wait()
}

// stop kills the server and its children (SIGKILL to its process group).
func (p *pgProcess) stop() {
	if p.cmd != nil && p.cmd.Process != nil {
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		p.cmd.Wait()
		// A killed postmaster leaves its shared memory and pid file; the
		// next start removes a stale pid file itself.
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitListening(t *testing.T, addr, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not listen on %s within 30s", what, addr)
}

// eventLoad creates, pays, refunds and closes orders through the proxy
// until stopped, counting every failure the clients saw.
type eventLoad struct {
	c        *cluster.Cluster
	stop     chan struct{}
	wg       sync.WaitGroup
	ok, fail atomic.Int64
	mu       sync.Mutex
	failures []string
}

func startEventLoad(t *testing.T, c *cluster.Cluster, workers int) *eventLoad {
	l := &eventLoad{c: c, stop: make(chan struct{})}
	for w := 0; w < workers; w++ {
		api := newClient(t, c, w%len(c.Credentials.Merchants))
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				l.one(api, fmt.Sprintf("ev-%d-%d-%s", w, i, randHex(3)), i)
			}
		}()
	}
	return l
}

// one makes an order and, by i, pays it and refunds part of it, or closes it.
func (l *eventLoad) one(api *client, out string, i int) {
	check := func(what string, r response, err error) bool {
		if err != nil || (r.status != 200 && r.status != 204) {
			l.fail.Add(1)
			l.mu.Lock()
			l.failures = append(l.failures, fmt.Sprintf("%s %s: %d %v %v", what, out, r.status, r.body, err))
			l.mu.Unlock()
			return false
		}
		l.ok.Add(1)
		return true
	}
	r, err := api.try("POST", "/v3/orders", createBody(out, int64(100+i%50)))
	if !check("create", r, err) {
		return
	}
	no := r.str("order_no")
	switch i % 3 {
	case 0:
		r, err = api.try("POST", "/v3/orders/"+no+"/pay", map[string]any{"payment_id": "pay-" + out})
		if check("pay", r, err) {
			r, err = api.try("POST", "/v3/refunds", map[string]any{"order_no": no, "out_refund_no": out + "-r",
				"amount": map[string]any{"refund": 30, "currency": "CNY"}})
			check("refund", r, err)
		}
	case 1:
		r, err = api.try("POST", "/v3/orders/"+no+"/close", nil)
		check("close", r, err)
	}
}

func (l *eventLoad) halt(t *testing.T) (ok, failed int64) {
	close(l.stop)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, f := range l.failures {
		if i == 5 {
			break
		}
		t.Logf("failure seen by a client: %s", f)
	}
	return l.ok.Load(), l.fail.Load()
}

// storesOf opens every unit's storage of c read-only, as the root
// interface the relay's and the query store's helpers take.
func storesOf(t *testing.T, c *cluster.Cluster) map[tradeunit.UnitID]tradeunit.Store {
	t.Helper()
	out := map[tradeunit.UnitID]tradeunit.Store{}
	for id, s := range unitStores(t, c) {
		out[id] = s
	}
	return out
}

// outboxIDs returns every event id ("<unit>-<seq>") of the units' outboxes,
// the probe merchant's excluded.
func outboxIDs(t *testing.T, stores map[tradeunit.UnitID]tradeunit.Store) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	for id, s := range stores {
		var after int64
		for {
			events, err := s.Events(context.Background(), after, 1000)
			if err != nil {
				t.Fatalf("unit %d outbox: %v", id, err)
			}
			if len(events) == 0 {
				break
			}
			for _, e := range events {
				oe, err := e.OrderEvent(id)
				if err != nil {
					t.Fatalf("unit %d event %d: %v", id, e.ID, err)
				}
				if oe.Order.Mchid != tradeunit.ProbeMchid {
					ids[oe.ID] = true
				}
				after = e.ID
			}
		}
	}
	return ids
}

// busRecorder reads every event of a test's stream with a durable consumer
// of its own, keeping each id's copies.
type busRecorder struct {
	mu     sync.Mutex
	copies map[string][]tradeunit.OrderEvent
	cancel context.CancelFunc
	done   chan struct{}
}

func recordBus(t *testing.T, ev *cluster.Events, url string) *busRecorder {
	t.Helper()
	cfg := ev.Bus
	cfg.URL = url
	ctx, cancel := context.WithCancel(context.Background())
	b, err := eventbus.Open(ctx, cfg, discardLog())
	if err != nil {
		t.Fatalf("open bus: %v", err)
	}
	r := &busRecorder{copies: map[string][]tradeunit.OrderEvent{}, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		b.Consume(ctx, "verify-"+randHex(3), 500, func(_ context.Context, events []tradeunit.OrderEvent) error {
			r.mu.Lock()
			defer r.mu.Unlock()
			for _, e := range events {
				r.copies[e.ID] = append(r.copies[e.ID], e)
			}
			return nil
		}, func(time.Time) {})
	}()
	t.Cleanup(func() { cancel(); <-r.done; b.Close() })
	return r
}

// missing returns the ids of want the recorder has not seen, and fails the
// test if two copies of one id differ.
func (r *busRecorder) missing(t *testing.T, want map[string]bool) []string {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for id := range want {
		if len(r.copies[id]) == 0 {
			out = append(out, id)
		}
	}
	for id, cs := range r.copies {
		for _, c := range cs[1:] {
			if !reflect.DeepEqual(c, cs[0]) {
				t.Fatalf("two copies of event %s differ: %+v and %+v", id, cs[0], c)
			}
		}
	}
	return out
}

func (r *busRecorder) duplicates() (n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, cs := range r.copies {
		n += len(cs) - 1
	}
	return n
}

// storeMatchesUnits reports whether the query store holds every order as
// the units hold it (same version and state) and every refund, and the
// totals of all time agree; the difference otherwise.
func storeMatchesUnits(ctx context.Context, s *query.Store, units map[tradeunit.UnitID]tradeunit.Store) (bool, string) {
	from, to := time.Unix(0, 0), time.Now().Add(time.Hour)
	var all []tradeunit.MerchantTotals
	for _, u := range units {
		tot, err := u.(tradeunit.TotalsReader).Totals(ctx, from, to)
		if err != nil {
			return false, err.Error()
		}
		all = append(all, tot...)
	}
	got, err := s.Totals(ctx, from, to)
	if err != nil {
		return false, err.Error()
	}
	if diff := admin.CompareTotals(tradeunit.SumTotals(all), tradeunit.SumTotals(got)); len(diff) > 0 {
		return false, fmt.Sprintf("totals differ: %+v", diff)
	}
	orders, _, err := s.Dump(ctx)
	if err != nil {
		return false, err.Error()
	}
	byNo := map[string]tradeunit.EventOrder{}
	for _, o := range orders {
		byNo[o.OrderNo] = o
	}
	for id, u := range units {
		after := ""
		for {
			page, err := u.OrdersAfter(ctx, after, 1000)
			if err != nil {
				return false, err.Error()
			}
			if len(page) == 0 {
				break
			}
			for _, o := range page {
				q, ok := byNo[o.OrderNo]
				if !ok || q.Version != o.Version || q.State != o.State || q.Refunded != o.Refunded {
					return false, fmt.Sprintf("unit %d order %s: unit v%d %s refunded %d, store %+v", id, o.OrderNo, o.Version, o.State, o.Refunded, q)
				}
				after = o.OrderNo
			}
		}
	}
	return true, ""
}

// waitStoreMatches polls until the query store matches the units.
func waitStoreMatches(t *testing.T, s *query.Store, units map[tradeunit.UnitID]tradeunit.Store, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var why string
	for time.Since(start) < timeout {
		ok, w := storeMatchesUnits(context.Background(), s, units)
		if ok {
			return time.Since(start)
		}
		why = w
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the query store did not catch up with the units within %v: %s", timeout, why)
	return 0
}

func openQueryStore(t *testing.T, target string) *query.Store {
	t.Helper()
	s, err := query.Open(context.Background(), target, query.DefaultConfig())
	if err != nil {
		t.Fatalf("open query store %s: %v", target, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
