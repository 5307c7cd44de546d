package e2e

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"tradeunit/cluster"
	"tradeunit/internal/ordermodel"
)

// TestLinearizable checks that creates, pays, closes and lookups of a few
// merchant keys at once are linearizable (package ordermodel: one order per
// key ever, lookups consistent with the history, pay and close by the state
// machine) while units' logic services and directory shards' services are
// killed with SIGKILL and restarted on their addresses: one replica, or now
// and then every replica of one unit or shard at once. Calls without a
// definite answer (503s) may take effect at any time after their call, or
// never; reads without one say nothing and are left out.
func TestLinearizable(t *testing.T) {
	const (
		workers  = 8
		slots    = 8  // keys in use at once
		perKey   = 40 // calls per key before its slot moves to a new key
		chaosFor = 20 * time.Second
		quietFor = 3 * time.Second // no kills: stale entries get settled
		every    = 2 * time.Second // a kill
	)
	c := startCluster(t, options{units: 3, replicas: 2, shards: 2, shardReplicas: 2, unitTimeout: time.Second})
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)

	var mchids []string
	var apis []*client
	for i, m := range c.Credentials.Merchants {
		mchids, apis = append(mchids, m.Mchid), append(apis, newClient(t, c, i))
	}
	h, keys := newLinHistory(), newLinKeys(mchids, slots, perKey)
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for !stop.Load() {
				key, m := keys.next(rng)
				h.do(w, apis[m], linCall(rng, key, h.orderNo(key)))
			}
		}()
	}
	chaos := startLinChaos(t, c, every, rand.New(rand.NewPCG(seed, workers)))
	time.Sleep(chaosFor) // the time under test
	chaos.stop()
	time.Sleep(quietFor) // the time under test, without kills
	stop.Store(true)
	wg.Wait()

	// Every key read back once more, the cluster whole: an order an answer
	// gave is still there, a create that had no answer shows its outcome.
	for _, key := range h.keys {
		api := apis[slices.Index(mchids, key.Mchid)]
		in := ordermodel.Input{Key: key, Op: ordermodel.Lookup}
		for deadline := time.Now().Add(10 * time.Second); ; {
			if h.do(workers, api, in) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("lookup of %v: no answer within 10s of the end", key)
			}
			time.Sleep(20 * time.Millisecond) // polling: every replica is running again
		}
	}

	for _, e := range h.errs {
		t.Error(e)
	}
	started := time.Now()
	res, info := porcupine.CheckOperationsVerbose(ordermodel.Model(), h.ops, 30*time.Second)
	checked := time.Since(started)
	n, folded := h.count, len(h.ops)
	for _, p := range ordermodel.Partition(h.ops) {
		folded -= len(p)
	}
	t.Logf("%d calls on %d keys (%d creates, %d pays, %d closes, %d lookups, %d gets recorded; %d retries without an answer folded), checked in %v: %v",
		n.ops+n.droppedReads, len(h.keys), countOps(h.ops, ordermodel.Create), countOps(h.ops, ordermodel.Pay),
		countOps(h.ops, ordermodel.Close), countOps(h.ops, ordermodel.Lookup), countOps(h.ops, ordermodel.Get), folded,
		checked.Round(time.Millisecond), res)
	t.Logf("kills: %d replicas, in %d events (%d of them every replica of a unit or shard)", chaos.kills, chaos.events, chaos.outages)
	t.Logf("503s: %d %v; 500s: %d; no answer: %d; without a definite outcome: %d creates, %d pays, %d closes; reads left out: %d",
		n.status503, n.codes503, n.status500, n.transport, n.unknownByOp[ordermodel.Create], n.unknownByOp[ordermodel.Pay],
		n.unknownByOp[ordermodel.Close], n.droppedReads)
	t.Logf("definite refusals: %v", n.definiteCodes)

	switch res {
	case porcupine.Ok:
	case porcupine.Unknown:
		t.Fatalf("the check did not finish within 30s (%d calls)", len(h.ops))
	default:
		t.Errorf("the history is not linearizable:\n%s", describeIllegal(h.ops))
		t.Fatalf("visualization: %s", writeVisualization(t, info))
	}
	if n.ops < 500 || chaos.kills < 5 {
		t.Fatalf("got %d calls and %d kills, want at least 500 and 5: the run proved little", n.ops, chaos.kills)
	}
}

func countOps(ops []porcupine.Operation, op ordermodel.Op) int {
	n := 0
	for _, o := range ops {
		if o.Input.(ordermodel.Input).Op == op {
			n++
		}
	}
	return n
}

// describeIllegal lists the history of each key that is not linearizable
// (the first three), in call order.
func describeIllegal(ops []porcupine.Operation) string {
	var b strings.Builder
	model, shown := ordermodel.Model(), 0
	for _, p := range ordermodel.Partition(ops) {
		if porcupine.CheckOperations(model, p) {
			continue
		}
		if shown++; shown > 3 {
			b.WriteString("(more keys)\n")
			break
		}
		fmt.Fprintf(&b, "key %v:\n", p[0].Input.(ordermodel.Input).Key)
		slices.SortFunc(p, func(a, b porcupine.Operation) int { return int(a.Call - b.Call) })
		for i, o := range p {
			if i == 80 {
				fmt.Fprintf(&b, "  (%d more calls)\n", len(p)-i)
				break
			}
			ret := "…"
			if o.Return != ordermodel.Never {
				ret = fmt.Sprintf("%.3fs", time.Duration(o.Return).Seconds())
			}
			fmt.Fprintf(&b, "  client %d %.3fs–%s %s\n", o.ClientId, time.Duration(o.Call).Seconds(), ret,
				ordermodel.Describe(o.Input.(ordermodel.Input), o.Output.(ordermodel.Output)))
		}
	}
	return b.String()
}

// writeVisualization writes porcupine's visualization of a failed check
// into the test's artifacts (go test -artifacts), or else a directory that
// outlives the test, and returns its path.
func writeVisualization(t *testing.T, info porcupine.LinearizationInfo) string {
	dir := ""
	if f := flag.Lookup("test.artifacts"); f != nil && f.Value.String() == "true" {
		dir = t.ArtifactDir()
	} else {
		var err error
		if dir, err = os.MkdirTemp("", "tradeunit-linearizability-"); err != nil {
			return err.Error()
		}
	}
	path := filepath.Join(dir, "history.html")
	if err := porcupine.VisualizePath(ordermodel.Model(), info, path); err != nil {
		return err.Error()
	}
	return path
}

// linChaos kills replicas of units and directory shards, and restarts them
// on their addresses.
type linChaos struct {
	done                   chan struct{}
	quit                   chan struct{}
	kills, events, outages int
}

// startLinChaos kills, every interval, one random replica of a random unit
// or shard, or one time in four every replica of it, and restarts them
// after a moment (a second for a whole unit or shard).
func startLinChaos(t *testing.T, c *cluster.Cluster, every time.Duration, rng *rand.Rand) *linChaos {
	var groups [][]*cluster.Replica
	for _, u := range c.Units {
		groups = append(groups, u.Replicas)
	}
	for _, s := range c.Shards {
		groups = append(groups, s.Replicas)
	}
	ch := &linChaos{done: make(chan struct{}), quit: make(chan struct{})}
	go func() {
		defer close(ch.done)
		for next := time.Now().Add(every / 2); ; next = next.Add(every) {
			select {
			case <-ch.quit:
				return
			case <-time.After(time.Until(next)):
			}
			victims := groups[rng.IntN(len(groups))]
			down := 300*time.Millisecond + time.Duration(rng.Int64N(int64(500*time.Millisecond)))
			if rng.IntN(4) == 0 {
				ch.outages++
				down = time.Second
			} else {
				i := rng.IntN(len(victims))
				victims = victims[i : i+1]
			}
			ch.events++
			for _, r := range victims {
				if err := r.Kill(); err != nil {
					t.Errorf("kill %s: %v", r.Name, err)
				}
				ch.kills++
			}
			time.Sleep(down) // the outage under test
			for _, r := range victims {
				if err := r.Start(context.Background()); err != nil {
					t.Errorf("restart %s: %v", r.Name, err)
					return
				}
			}
		}
	}()
	return ch
}

// stop ends the kills once every replica killed is running again.
func (ch *linChaos) stop() {
	close(ch.quit)
	<-ch.done
}
