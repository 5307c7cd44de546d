package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"tradeunit"
	"tradeunit/admin"
	"tradeunit/dsn"
	"tradeunit/replication"
	"tradeunit/replication/localdb"
	"tradeunit/routing"
)

// TestKillShardPrimaryUnderLoad kills -9 the MariaDB primary of directory
// shard 1 (half the buckets; shard 2, on SQLite, holds the other half)
// while clients create, pay, query and look orders up by out_trade_no
// through the proxy, then fails the shard over as an operator would:
// tradeunit admin failover --shard 1, once the shard's service has said for
// a second that it cannot take changes. The replicated unit keeps its
// database on the same three servers, so it fails over with the shard.
// It reports, and checks:
//
//   - the affected share of keys: the killed shard's share of the buckets,
//     and of the creates during the outage; every create that failed was
//     of its keys, and every create of shard 2's keys succeeded;
//   - the duration: from the kill to the first acknowledged create of a
//     shard 1 key, within a bound;
//   - nothing lost, nothing doubled: every create that got no order is
//     repeated with the same out_trade_no until it gets one; then every
//     order the client was told of is there with its last acknowledged
//     state, found by its out_trade_no as the same order, and alone in
//     every unit's storage but for orphans closed as superseded;
//   - fencing: never two writable servers (polled throughout); the old
//     primary, restarted, rejoins as a replica of the shard and the unit.
func TestKillShardPrimaryUnderLoad(t *testing.T) {
	c := startHA(t, haOptions{sqliteUnits: 2, shardOnSet: true, shardReplicas: 2, secondShard: true})
	ctx := context.Background()
	const killed = routing.ShardID(1)
	sh, _ := c.topology.Current().Shard(killed)
	old := sh.Primary
	oldIn := setInstance(t, c.set, old)
	dir := c.routes.Current().Directory
	shardOf := func(out string) routing.ShardID {
		s, _ := dir.ShardOf(tradeunit.MerchantKey{Mchid: c.mchid, Kind: tradeunit.KeyOrder, Value: out}.Bucket())
		return s.Shard
	}
	bucketShare := 100 * float64(bucketsOf(dir, killed)) / tradeunit.DirectoryBuckets
	watch := watchPrimaries(t, c.set)

	load := startHALoadWith(c, 8, haLoadOptions{lookups: true})
	var cursor int
	var events []haEvent
	// watchLoad waits until cond holds over the events so far.
	watchLoad := func(timeout time.Duration, what string, cond func([]haEvent) bool) {
		t.Helper()
		waitFor(t, timeout, what, func() bool {
			more, n := load.since(cursor)
			events, cursor = append(events, more...), n
			return cond(events)
		})
	}
	createsOK := func(shard routing.ShardID, after time.Time) func([]haEvent) bool {
		return func(es []haEvent) bool {
			n := 0
			for _, e := range es {
				if e.op == "create" && e.ok && shardOf(e.out) == shard && e.start.After(after) {
					n++
				}
			}
			return n >= 30
		}
	}
	watchLoad(60*time.Second, "30 creates of each shard's keys before the kill", func(es []haEvent) bool {
		return createsOK(1, time.Time{})(es) && createsOK(2, time.Time{})(es)
	})
	steal0, total0 := cpuSteal()
	kill := time.Now()
	if err := oldIn.Kill(); err != nil {
		t.Fatal(err)
	}

	// The operator's automation: fail over once the shard has said for a
	// second that it cannot take changes.
	health := dialShardHealth(t, c.shard[0].Addr())
	defer health.close()
	waitFor(t, 10*time.Second, "directory shard 1 reporting NOT_SERVING", func() bool { return health.serving() != nil })
	detected := time.Now()
	time.Sleep(time.Second) // the detector's confirmation, not a wait for a condition
	failover := time.Now()
	res := adminFailover(t, c, "--shard", strconv.Itoa(int(killed)))
	failedOver := time.Now()
	for _, s := range res.Steps {
		t.Logf("  failover step %-14s %8.1fms  %s", s.Name, s.TookMS, s.Detail)
	}
	unitRef := routing.UnitRef(c.unit)
	if res.Target != routing.ShardRef(killed) || !slices.Equal(res.Colocated, []routing.StorageRef{unitRef}) || res.OldFenced {
		t.Errorf("failover: got target %v, colocated %v, old fenced %v; want shard 1 with unit %d on its servers, the killed primary unreachable",
			res.Target, res.Colocated, res.OldFenced, c.unit)
	}
	// The failover ran in another process: this one sees its topology
	// revision once its file poll has read it.
	waitFor(t, 5*time.Second, "the failover's topology revision in this process", func() bool {
		return c.topology.Current().Revision >= res.Revision
	})
	for _, ref := range []routing.StorageRef{routing.ShardRef(killed), unitRef} {
		st, _ := c.topology.Current().Entry(ref)
		if st.Primary.Server() != res.NewPrimary.Server() || !slices.ContainsFunc(st.Fenced, func(d dsn.DSN) bool { return d.Server() == old.Server() }) {
			t.Errorf("%s after the failover: got %+v, want primary on %s and %s fenced", ref, st, res.NewPrimary.Server(), old.Server())
		}
	}

	// Recovered: the first create of a shard 1 key acknowledged after the
	// kill; then some more, so that the load runs on the new primary.
	var recovered time.Time
	watchLoad(60*time.Second, "a create of a shard 1 key acknowledged after the kill", func(es []haEvent) bool {
		for _, e := range es {
			if e.op == "create" && e.ok && shardOf(e.out) == killed && e.start.After(kill) && (recovered.IsZero() || e.end.Before(recovered)) {
				recovered = e.end
			}
		}
		return !recovered.IsZero()
	})
	steal1, total1 := cpuSteal()
	watchLoad(60*time.Second, "30 creates of each shard's keys after the recovery", func(es []haEvent) bool {
		return createsOK(1, recovered)(es) && createsOK(2, recovered)(es)
	})
	orders, events, errs := load.halt()
	for _, e := range errs {
		t.Error(e)
	}

	// The figures of the outage [kill, recovered).
	type tally struct{ total, ok int }
	creates, lookups := map[routing.ShardID]*tally{1: {}, 2: {}}, map[routing.ShardID]*tally{1: {}, 2: {}}
	var failedOther []string
	for _, e := range events {
		if e.status >= 500 && e.status != 503 {
			t.Errorf("%s %s at kill%+v answered %d %s, want 200 or 503", e.op, e.out, e.start.Sub(kill).Round(time.Millisecond), e.status, e.code)
		}
		if e.op == "create" && !e.ok && shardOf(e.out) != killed && len(failedOther) < 10 {
			failedOther = append(failedOther, fmt.Sprintf("%s at kill%+v: %d %s", e.out, e.start.Sub(kill).Round(time.Millisecond), e.status, e.code))
		}
		if e.start.Before(kill) || !e.start.Before(recovered) {
			continue
		}
		if m := map[string]map[routing.ShardID]*tally{"create": creates, "lookup": lookups}[e.op]; m != nil {
			m[shardOf(e.out)].total++
			if e.ok {
				m[shardOf(e.out)].ok++
			}
		}
	}
	during := creates[1].total + creates[2].total
	keyShare := share(creates[1].total, during)
	failedShare := share(creates[1].total-creates[1].ok+creates[2].total-creates[2].ok, during)
	steal := 0.0
	if total1 > total0 {
		steal = 100 * float64(steal1-steal0) / float64(total1-total0)
	}
	allCreates := countEvents(events, "create", 0, time.Time{}, time.Now())
	t.Logf("load: %d requests, %d orders acknowledged, %d creates (%d ok); CPU steal during the outage %.0f%%",
		len(events), len(orders), allCreates.total, allCreates.ok, steal)
	t.Logf("outage of directory shard %d: kill → NOT_SERVING %v → (1s confirmation) failover command started %v → returned %v (its steps took %.0fms, remapped after %.0fms) → first create of its keys acknowledged %v",
		killed, detected.Sub(kill).Round(time.Millisecond), failover.Sub(kill).Round(time.Millisecond), failedOver.Sub(kill).Round(time.Millisecond),
		res.TookMS, res.RemappedMS, recovered.Sub(kill).Round(time.Millisecond))
	t.Logf("affected keys: directory shard %d holds %.1f%% of the buckets; of the %d creates during the outage, %.1f%% were of its keys and %.1f%% failed",
		killed, bucketShare, during, keyShare, failedShare)
	t.Logf("duration (kill → creates of the shard's keys succeed again): %v, of which %v from the failover's start",
		recovered.Sub(kill).Round(time.Millisecond), recovered.Sub(failover).Round(time.Millisecond))
	t.Logf("creates during the outage: shard 1's keys %d of %d succeeded, shard 2's %d of %d", creates[1].ok, creates[1].total, creates[2].ok, creates[2].total)
	t.Logf("lookups by out_trade_no during the outage: shard 1's keys %d of %d served, shard 2's %d of %d", lookups[1].ok, lookups[1].total, lookups[2].ok, lookups[2].total)

	if len(failedOther) > 0 {
		t.Errorf("creates of keys of shard 2, which did not fail, failed: %s", strings.Join(failedOther, "; "))
	}
	if creates[2].total == 0 || creates[2].ok != creates[2].total {
		t.Errorf("creates of shard 2's keys during the outage: got %d of %d, want all (and some)", creates[2].ok, creates[2].total)
	}
	if creates[1].total == 0 {
		t.Error("no create of shard 1's keys was tried during the outage")
	}
	// The keys are hashed: shard 1's share of the creates is its share of
	// the buckets, give or take the sampling (a binomial's 3 sigma at 100
	// creates is 15 points).
	if during >= 100 && (keyShare < bucketShare-15 || keyShare > bucketShare+15) {
		t.Errorf("share of the creates during the outage of shard 1's keys: got %.1f%%, want %.1f%% ± 15", keyShare, bucketShare)
	}
	if d := recovered.Sub(kill); d > shardRecoveryBound {
		t.Errorf("kill → creates of the shard's keys succeed again: got %v, want under %v", d.Round(time.Millisecond), shardRecoveryBound)
	}
	// Lookups are of acknowledged orders: committed entries, which the
	// killed shard's replicas serve while it has no primary.
	for _, s := range []routing.ShardID{1, 2} {
		if lookups[s].ok < lookups[s].total*9/10 {
			t.Errorf("lookups of shard %d's keys during the outage: got %d of %d served, want at least 90%%", s, lookups[s].ok, lookups[s].total)
		}
	}

	// A client repeats every create that got no order, with the same
	// out_trade_no and body, until it gets one: the directory, failed over,
	// must give each key one order.
	repeated, madeBefore := 0, 0
	for _, out := range load.unanswered {
		repeatStart := time.Now()
		var r response
		for deadline := time.Now().Add(30 * time.Second); ; {
			r = c.api.call("POST", "/v3/orders", createBody(out, 100))
			if r.status == 200 {
				break
			}
			if r.status != 503 || time.Now().After(deadline) {
				t.Fatalf("repeat the create of %s after the recovery: %d %v", out, r.status, r.body)
			}
			time.Sleep(50 * time.Millisecond) // a client's back-off
		}
		repeated++
		if ct, err := time.Parse(time.RFC3339Nano, r.str("create_time")); err == nil && ct.Before(repeatStart.Add(-time.Second)) {
			madeBefore++ // its first create made it, unanswered
		}
		orders = append(orders, &haOrder{no: r.str("order_no"), out: out, unit: unitOf(r), state: tradeunit.TradeState(r.str("trade_state"))})
	}
	t.Logf("creates that got no order, repeated with the same out_trade_no: %d, each answered with one order (%d made by the first try)", repeated, madeBefore)

	// Repeat every pay that got no answer until it does.
	settlePaysAndVerify(t, c, orders)
	verifyDirectory(t, c, orders, shardOf)

	// The old primary comes back read-only, as a replica, and rejoins the
	// shard and the unit on its servers.
	if err := oldIn.StartAs(ctx, localdb.Replica); err != nil {
		t.Fatal(err)
	}
	if err := appWrite(oldIn, c.db); !isReadOnly(err) {
		t.Errorf("application write to the restarted old primary: got %v, want a read-only refusal (1290)", err)
	}
	_, err := c.admin.RejoinShard(ctx, killed, "", admin.DefaultFailoverOptions())
	if errors.Is(err, replication.ErrErrantGTIDs) {
		t.Logf("old primary holds errant transactions (%v): rebuilt, then rejoined", err)
		if err := oldIn.Rebuild(ctx); err != nil {
			t.Fatal(err)
		}
		_, err = c.admin.RejoinShard(ctx, killed, "", admin.DefaultFailoverOptions())
	}
	if err != nil {
		t.Fatalf("rejoin the old primary: %v", err)
	}
	for _, ref := range []routing.StorageRef{routing.ShardRef(killed), unitRef} {
		st, _ := c.topology.Current().Entry(ref)
		if !slices.ContainsFunc(st.Replicas, func(d dsn.DSN) bool { return d.Server() == old.Server() }) || len(st.Fenced) != 0 {
			t.Errorf("%s after the rejoin: got %+v, want the old primary among the replicas and nothing fenced", ref, st)
		}
	}
	waitFor(t, 15*time.Second, "old primary replicating from the new one", func() bool {
		s, err := replication.Inspect(ctx, oldIn.RootDSN())
		return err == nil && s.Replica != nil && s.Replica.Receiving() && s.Replica.SQLRunning
	})
	watch.check(t)
}

// shardRecoveryBound bounds kill → the killed shard's keys created again:
// detection (the services check every 100 ms), the 1 s confirmation, the
// failover command (a process start, then steps of a few hundred ms) and
// the services opening the new primary, with room for a loaded machine.
const shardRecoveryBound = 20 * time.Second

// verifyDirectory checks that every acknowledged order is found by its
// out_trade_no through the proxy, as the same order: its directory entry
// survived the failover (RPO = 0 of the directory).
func verifyDirectory(t *testing.T, c *haCluster, orders []*haOrder, shardOf func(string) routing.ShardID) {
	t.Helper()
	byShard := map[routing.ShardID]int{}
	var wrong []string
	for _, o := range orders {
		byShard[shardOf(o.out)]++
		r := c.api.call("GET", "/v3/orders/out-trade-no/"+o.out, nil)
		if r.status != 200 || r.str("order_no") != o.no {
			if len(wrong) < 10 {
				wrong = append(wrong, fmt.Sprintf("%s (shard %d): got %d %s, acknowledged %s", o.out, shardOf(o.out), r.status, r.str("order_no"), o.no))
			}
		}
	}
	t.Logf("directory check: %d acknowledged orders looked up by out_trade_no (shard 1: %d, shard 2: %d): %d not found as acknowledged",
		len(orders), byShard[1], byShard[2], len(wrong))
	if len(wrong) > 0 {
		t.Errorf("lookups by out_trade_no after the failover: %s", strings.Join(wrong, "; "))
	}
}

// failoverJSON is what tradeunit admin failover --json prints.
type failoverJSON struct {
	Target     routing.StorageRef   `json:"target"`
	Colocated  []routing.StorageRef `json:"colocated"`
	OldFenced  bool                 `json:"old_fenced"`
	NewPrimary dsn.DSN              `json:"new_primary"`
	Revision   int64                `json:"revision"`
	RemappedMS float64              `json:"remapped_ms"`
	TookMS     float64              `json:"took_ms"`
	Steps      []struct {
		Name   string  `json:"name"`
		TookMS float64 `json:"took_ms"`
		Detail string  `json:"detail"`
	} `json:"steps"`
	Error string `json:"error"`
}

// adminFailover runs tradeunit admin failover on the cluster's routing
// table, as an operator would, and returns what it printed.
func adminFailover(t *testing.T, c *haCluster, args ...string) failoverJSON {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, append([]string{"admin", "failover", "--routes", c.path, "--secrets", c.set.SecretsPath(),
		"--why", "e2e", "--json"}, append(operatorArgs(t, c.dir), args...)...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var res failoverJSON
	if jerr := json.Unmarshal(stdout.Bytes(), &res); err != nil || jerr != nil {
		t.Fatalf("tradeunit admin failover %s: %v %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, jerr, stdout.String(), stderr.String())
	}
	return res
}

// setInstance returns the set's server of a storage DSN.
func setInstance(t *testing.T, set *localdb.Set, d dsn.DSN) *localdb.Instance {
	t.Helper()
	for _, in := range set.Instances {
		if in.Addr() == d.Server() {
			return in
		}
	}
	t.Fatalf("no instance of the set serves %s", d)
	return nil
}

// bucketsOf counts the buckets of shard id.
func bucketsOf(d *routing.Directory, id routing.ShardID) int {
	s, _ := d.Shard(id)
	n := 0
	for _, r := range s.Buckets {
		n += r.To - r.From + 1
	}
	return n
}

// cpuSteal returns the host's stolen and total CPU time so far, in ticks
// (/proc/stat's first line); zeros where it cannot be read.
func cpuSteal() (steal, total uint64) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	fields := strings.Fields(line)
	for i, f := range fields[1:] {
		n, _ := strconv.ParseUint(f, 10, 64)
		if i < 8 { // user nice system idle iowait irq softirq steal; guest is in user
			total += n
		}
		if i == 7 {
			steal = n
		}
	}
	return steal, total
}
