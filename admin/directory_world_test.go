package admin

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"tradeunit"
	"tradeunit/dsn"
	"tradeunit/routing"
	"tradeunit/rpc"
	"tradeunit/store/dirstore"
	"tradeunit/store/sqlstore"
	unitsvc "tradeunit/unit"
)

// dirWorld is two units, each a logic service in process over its own
// SQLite file, and two directory shards, each a real dirstore on SQLite
// served over gRPC on a loopback port, under a routing table and a storage
// topology in memory; Admin reaches them as an operator's command does.
type dirWorld struct {
	a      *Admin
	units  map[tradeunit.UnitID]*unitsvc.Service
	shards map[routing.ShardID]*dirstore.Store
	routes *routing.Memory[routing.Table, *routing.Table]
	pool   *rpc.Pool
}

const mch = "1900000001"

func newDirWorld(t *testing.T) *dirWorld {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	w := &dirWorld{units: map[tradeunit.UnitID]*unitsvc.Service{}, shards: map[routing.ShardID]*dirstore.Store{}, pool: rpc.NewPool()}
	t.Cleanup(func() { w.pool.Close() })
	table, top := &routing.Table{Revision: 1}, &routing.Topology{Revision: 1}
	for id := tradeunit.UnitID(1); id <= 2; id++ {
		d := dsn.MustParse(fmt.Sprintf("sqlite:%s/unit-%d.db", dir, id))
		store, err := sqlstore.Open(ctx, d, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		cfg := unitsvc.DefaultConfig(id)
		cfg.SequenceBlock = 10
		if w.units[id], err = unitsvc.New(cfg, store); err != nil {
			t.Fatal(err)
		}
		table.Units = append(table.Units, routing.Unit{ID: id, LogicAddrs: []string{"127.0.0.1:1"}, Available: true, AcceptNew: true})
		top.Set(id, routing.Storage{Primary: d})
	}
	table.Directory = routing.SplitBuckets([]routing.ShardID{1, 2})
	for i := range table.Directory.Shards {
		id := table.Directory.Shards[i].Shard
		d := dsn.MustParse("sqlite:" + filepath.Join(dir, fmt.Sprintf("directory-%d.db", id)))
		store, err := dirstore.Open(ctx, d, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		w.shards[id] = store
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv, _ := rpc.NewDirectoryServer(store, slog.New(slog.NewTextHandler(io.Discard, nil)))
		go srv.Serve(lis)
		t.Cleanup(srv.Stop)
		table.Directory.Shards[i].LogicAddrs = []string{lis.Addr().String()}
		top.SetShard(id, routing.Storage{Primary: d})
	}
	var err error
	if w.routes, err = routing.NewMemoryTable(table); err != nil {
		t.Fatal(err)
	}
	topology, err := routing.NewMemoryTopology(top)
	if err != nil {
		t.Fatal(err)
	}
	w.a = &Admin{Routes: w.routes, Topology: topology, Dialer: w.pool, Who: "test"}
	return w
}

// order makes an order on unit u as the units did before the directory:
// no attempt.
func (w *dirWorld) order(t *testing.T, u tradeunit.UnitID, out string, total int64) *tradeunit.Order {
	t.Helper()
	o, err := w.units[u].CreateOrder(context.Background(), tradeunit.CreateOrderRequest{Mchid: mch, OutTradeNo: out,
		Description: "before the directory", Amount: tradeunit.Amount{Total: total}})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// refund pays o (once) and refunds amount of it as out.
func (w *dirWorld) refund(t *testing.T, o *tradeunit.Order, out string, amount int64) *tradeunit.Refund {
	t.Helper()
	ctx := context.Background()
	u := w.unitOf(t, o.OrderNo)
	if _, err := w.units[u].PayOrder(ctx, tradeunit.PayOrderRequest{Mchid: o.Mchid, OrderNo: o.OrderNo, PaymentID: "pay-" + o.OutTradeNo}); err != nil {
		t.Fatal(err)
	}
	f, err := w.units[u].CreateRefund(ctx, tradeunit.CreateRefundRequest{Mchid: o.Mchid, OrderNo: o.OrderNo, OutRefundNo: out,
		Amount: tradeunit.RefundAmount{Refund: amount}, Reason: "changed my mind"})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (w *dirWorld) unitOf(t *testing.T, orderNo string) tradeunit.UnitID {
	t.Helper()
	for id, svc := range w.units {
		if _, err := svc.Order(context.Background(), mch, orderNo); err == nil {
			return id
		}
	}
	t.Fatalf("no unit holds order %s", orderNo)
	return 0
}

// shardOf returns the store of the shard that holds key's bucket now.
func (w *dirWorld) shardOf(key tradeunit.MerchantKey) *dirstore.Store {
	s, _ := w.routes.Current().Directory.ShardOf(key.Bucket())
	return w.shards[s.Shard]
}

// entry returns key's entry (nil: none) on the shard that holds it.
func (w *dirWorld) entry(t *testing.T, key tradeunit.MerchantKey) *tradeunit.DirectoryEntry {
	t.Helper()
	e, err := w.shardOf(key).Entry(context.Background(), key)
	if tradeunit.IsCode(err, tradeunit.CodeNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// put stores e as new on the shard that holds its key.
func (w *dirWorld) put(t *testing.T, e *tradeunit.DirectoryEntry) {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	e.Version, e.Created, e.Updated = 1, now, now
	if r := w.shardOf(e.Key).Put(context.Background(), []*tradeunit.DirectoryEntry{e}); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
}

// update changes the routing table's directory.
func (w *dirWorld) update(t *testing.T, fn func(d *routing.Directory)) {
	t.Helper()
	if _, err := w.routes.Update(context.Background(), routing.Change{Who: "test"}, func(tb *routing.Table) error {
		fn(tb.Directory)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func orderKey(out string) tradeunit.MerchantKey {
	return tradeunit.MerchantKey{Mchid: mch, Kind: tradeunit.KeyOrder, Value: out}
}

func refundKey(out string) tradeunit.MerchantKey {
	return tradeunit.MerchantKey{Mchid: mch, Kind: tradeunit.KeyRefund, Value: out}
}

// orderFingerprint is the fingerprint a proxy's create of o's body has.
func orderFingerprint(o *tradeunit.Order) string {
	r := tradeunit.CreateOrderRequest{Mchid: o.Mchid, OutTradeNo: o.OutTradeNo, Description: o.Description,
		Amount: tradeunit.Amount{Total: o.Amount.Total}}
	r.Normalize()
	return r.Fingerprint()
}
