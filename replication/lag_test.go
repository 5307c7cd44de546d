package replication_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"tradeunit/replication"
	"tradeunit/replication/localdb"
)

// lagOf is replication.Lag that fails the test on error.
func lagOf(t *testing.T, in *localdb.Instance) replication.ReplicaLag {
	t.Helper()
	l, err := replication.Lag(ctxTimeout(t, 5*time.Second), in.RootDSN(), 0)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// lagBelow waits until in's heartbeat lag is below d and returns how long
// that took.
func lagBelow(t *testing.T, in *localdb.Instance, d, timeout time.Duration) time.Duration {
	t.Helper()
	t0 := time.Now()
	eventually(t, timeout, fmt.Sprintf("%s heartbeat lag below %v", in.Name, d), func() bool {
		l := lagOf(t, in)
		return l.HasHeartbeat && l.Heartbeat < d
	})
	return time.Since(t0)
}

// TestLag: with a heartbeat every 100 ms, a replica's lag is small; it
// grows while the replica's applier is stopped (and Seconds_Behind_Master
// is NULL) and shrinks when it restarts; a paused replica cannot report its
// lag at all (ErrUnreachable, not 0).
func TestLag(t *testing.T) {
	p, rs := topo(t)
	hb, err := replication.StartHeartbeat(context.Background(), p.RootDSN(), 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer hb.Stop()
	r := rs[0]
	lagBelow(t, r, 500*time.Millisecond, 5*time.Second)
	l := lagOf(t, r)
	t.Logf("%s idle: heartbeat lag %v, Seconds_Behind_Master %v, backlog %d", r.Name, l.Heartbeat, deref(l.SecondsBehindMaster), l.Backlog)

	if _, err := rootDB(t, r).Exec("STOP SLAVE SQL_THREAD"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1200 * time.Millisecond) // the time the lag must then show
	l = lagOf(t, r)
	t.Logf("%s applier stopped 1.2s: heartbeat lag %v, Seconds_Behind_Master %v, backlog %d", r.Name, l.Heartbeat, deref(l.SecondsBehindMaster), l.Backlog)
	if l.Heartbeat < time.Second || l.Backlog == 0 {
		t.Errorf("applier stopped 1.2s: got heartbeat lag %v, backlog %d; want 1s+ and a backlog", l.Heartbeat, l.Backlog)
	}
	if _, err := rootDB(t, r).Exec("START SLAVE SQL_THREAD"); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s applier restarted: lag back under 300ms in %v", r.Name,
		lagBelow(t, r, 300*time.Millisecond, 5*time.Second).Round(time.Millisecond))

	if err := r.Pause(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	_, err = replication.Lag(ctx, r.RootDSN(), 0)
	cancel()
	r.Resume()
	if !errors.Is(err, replication.ErrUnreachable) {
		t.Errorf("Lag of a paused replica: got %v, want ErrUnreachable", err)
	}
	if last, err := hb.Last(); err != nil || time.Since(last) > time.Second {
		t.Errorf("heartbeat writer: last write %v ago, error %v", time.Since(last), err)
	}
}

// TestLagCutLink: a replica whose link to the primary is black-holed (a
// partition, through a TCP proxy) still says Slave_IO_Running=Yes and
// Seconds_Behind_Master=0 for a while; the heartbeat lag tells the truth.
// The other replica keeps acknowledging, so commits go on.
func TestLagCutLink(t *testing.T) {
	p, rs := topo(t)
	r := rs[1]
	hb, err := replication.StartHeartbeat(context.Background(), p.RootDSN(), 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer hb.Stop()

	server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	proxy := toxiproxy.NewProxy(server, "repl", "127.0.0.1:0", p.Addr())
	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	defer proxy.Stop()
	src := set.Source(p)
	_, port, _ := net.SplitHostPort(proxy.Listen)
	src.Port, _ = strconv.Atoi(port)
	if err := replication.Repoint(ctxTimeout(t, 10*time.Second), r.RootDSN(), src); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := replication.Repoint(ctxTimeout(t, 10*time.Second), r.RootDSN(), set.Source(p)); err != nil {
			t.Error(err)
		}
	}()
	eventually(t, 10*time.Second, r.Name+" receiving through the proxy", func() bool {
		st := inspect(t, r).Replica
		return st.SourcePort == src.Port && st.Receiving()
	})
	lagBelow(t, r, 500*time.Millisecond, 10*time.Second)

	for _, doc := range []string{
		`{"name":"cut_down","type":"timeout","stream":"downstream","attributes":{"timeout":0}}`,
		`{"name":"cut_up","type":"timeout","stream":"upstream","attributes":{"timeout":0}}`,
	} {
		if _, err := proxy.Toxics.AddToxicJson(strings.NewReader(doc)); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Now()
	tbl := table(t, p) // a commit: acknowledged by the other replica
	t.Logf("commit with %s cut off: %v", r.Name, time.Since(t0).Round(time.Millisecond))
	time.Sleep(1500 * time.Millisecond) // the time the lag must then show, while Seconds_Behind_Master may not
	l := lagOf(t, r)
	st := inspect(t, r).Replica
	t.Logf("%s cut off 1.5s: heartbeat lag %v; Slave_IO_Running %s, Seconds_Behind_Master %v, backlog %d",
		r.Name, l.Heartbeat.Round(time.Millisecond), st.IORunning, deref(l.SecondsBehindMaster), l.Backlog)
	if l.Heartbeat < time.Second {
		t.Errorf("cut off 1.5s: heartbeat lag %v, want 1s+", l.Heartbeat)
	}
	if ps := inspect(t, p); !ps.Acknowledged() || ps.SemiSync.LongestWait > 500*time.Millisecond {
		t.Errorf("primary with one replica cut off: %+v, want commits acknowledged by the other", ps.SemiSync)
	}

	proxy.Toxics.ResetToxics(context.Background())
	t.Logf("%s link restored: lag back under 500ms in %v", r.Name,
		lagBelow(t, r, 500*time.Millisecond, 20*time.Second).Round(time.Millisecond))
	caughtUp(t, p, r)
	ids(t, r, tbl) // the table created while the link was cut has arrived
}
