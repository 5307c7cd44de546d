package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tradeunit"
	"tradeunit/batch"
	"tradeunit/dsn"
	"tradeunit/orderno"
	"tradeunit/store/sqlstore"
	"tradeunit/store/storetest"
	"tradeunit/unit"
)

// payers is how many goroutines pay at once: the concurrent pays a unit's
// logic service sees from a busy proxy.
const payers = 16

// payRounds is how many times each storage runs both modes, interleaved
// (on, off, on, off, ...), so that a drift of the noisy host shows as
// spread instead of as a difference between the modes.
const payRounds = 3

// BenchmarkPayGroupCommit pays b.N fresh orders from payers goroutines
// straight into a logic service (unit.Service, no proxy or gRPC), with the
// group commit of changes on (unit.DefaultConfig) and off
// (ChangeBatch.Disabled), and on MySQL with two batches in flight, in
// payRounds interleaved rounds per storage, each on a fresh storage. It reports pays/s, the CPU per pay of this process
// and of mariadbd, latency, the mean batch and the host's CPU steal.
// Give it a fixed count so that rounds compare:
//
//	go test -run='^$' -bench=PayGroupCommit -benchtime=4000x ./bench/
func BenchmarkPayGroupCommit(b *testing.B) {
	groupCommitRounds(b, changeOp{name: "pay", do: func(ctx context.Context, svc *unit.Service, no string) error {
		_, err := svc.PayOrder(ctx, tradeunit.PayOrderRequest{Mchid: Mchid, OrderNo: no, PaymentID: "pay-" + no})
		return err
	}, stats: (*unit.Service).ChangeStats})
}

// BenchmarkRefundGroupCommit is BenchmarkPayGroupCommit for refunds: one
// refund of 1 fen of each of b.N paid orders, through the whole refund
// path of the logic service (its read of the order, for the currency and
// the refund window, included).
func BenchmarkRefundGroupCommit(b *testing.B) {
	groupCommitRounds(b, changeOp{name: "refund", paid: true, do: func(ctx context.Context, svc *unit.Service, no string) error {
		_, err := svc.CreateRefund(ctx, tradeunit.CreateRefundRequest{Mchid: Mchid, OrderNo: no, OutRefundNo: "refund-" + no[16:],
			Amount: tradeunit.RefundAmount{Refund: 1}})
		return err
	}, stats: (*unit.Service).RefundStats})
}

// changeOp is the change a group-commit benchmark makes to each order.
type changeOp struct {
	name  string
	paid  bool // the orders are paid before the timer starts
	do    func(ctx context.Context, svc *unit.Service, orderNo string) error
	stats func(*unit.Service) batch.Stats
}

func groupCommitRounds(b *testing.B, op changeOp) {
	type mode struct {
		name string
		cfg  func(*batch.Config)
	}
	on := mode{"batch-on", func(*batch.Config) {}}
	off := mode{"batch-off", func(c *batch.Config) { c.Disabled = true }}
	// MySQL commits transactions in parallel: two batches in flight
	// overlap one's round trips with the other's.
	twoFlushers := mode{"batch-on-2flushers", func(c *batch.Config) { c.Flushers = 2 }}
	storages := []struct {
		name  string
		open  func(b *testing.B) (*sqlstore.Store, []int)
		modes []mode
	}{
		{"sqlite", func(b *testing.B) (*sqlstore.Store, []int) {
			return openStore(b, dsn.MustParse("sqlite:"+filepath.Join(b.TempDir(), "unit.db"))), nil
		}, []mode{on, off}},
		{"mysql", func(b *testing.B) (*sqlstore.Store, []int) {
			return openStore(b, storetest.NewMySQLDatabase(b)), (&Env{Storage: "mysql"}).StoragePids()
		}, []mode{on, off, twoFlushers}},
	}
	for _, st := range storages {
		for round := 1; round <= payRounds; round++ {
			for _, m := range st.modes {
				b.Run(fmt.Sprintf("%s/round%d/%s", st.name, round, m.name), func(b *testing.B) {
					store, storagePids := st.open(b)
					cfg := unit.DefaultConfig(1)
					m.cfg(&cfg.ChangeBatch)
					runChanges(b, store, storagePids, cfg, op)
				})
			}
		}
	}
}

func openStore(b *testing.B, d dsn.DSN) *sqlstore.Store {
	store, err := sqlstore.Open(context.Background(), d, storetest.TestPasswords())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	return store
}

// runChanges creates b.N orders in store, untimed, and makes op's change
// of each once through a logic service of cfg over it.
func runChanges(b *testing.B, store *sqlstore.Store, storagePids []int, cfg unit.Config, op changeOp) {
	ctx := context.Background()
	svc, err := unit.New(cfg, store)
	if err != nil {
		b.Fatal(err)
	}
	defer svc.Close()
	nos := seedOrders(b, store, b.N, op.paid)

	var next atomic.Int64
	lat := make([][]time.Duration, payers)
	meter := NewCPUMeter(map[string][]int{"self": nil, "mariadbd": storagePids})
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := range payers {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(len(nos)); i = next.Add(1) - 1 {
				start := time.Now()
				if err := op.do(ctx, svc, nos[i]); err != nil {
					b.Errorf("%s %s: %v", op.name, nos[i], err)
					return
				}
				lat[w] = append(lat[w], time.Since(start))
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	used, steal := meter.Used(), meter.Steal()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), op.name+"s/s")
	b.ReportMetric(float64(used["self"]/time.Microsecond)/float64(b.N), "cpu-µs/"+op.name)
	if len(storagePids) > 0 {
		b.ReportMetric(float64(used["mariadbd"]/time.Microsecond)/float64(b.N), "mariadbd-µs/"+op.name)
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) > 0 {
		b.ReportMetric(float64(all[len(all)/2])/float64(time.Microsecond), "p50-µs")
		b.ReportMetric(float64(all[len(all)*99/100])/float64(time.Microsecond), "p99-µs")
	}
	st := op.stats(svc)
	b.ReportMetric(float64(st.Items)/float64(max(st.Batches, 1)), op.name+"s/batch")
	b.ReportMetric(100*steal, "steal%")
}

// seedOrders writes n NOTPAY orders of unit 1 straight into store, in
// batches, pays them if paid, and returns their numbers.
func seedOrders(b *testing.B, store *sqlstore.Store, n int, paid bool) []string {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	nos := make([]string, 0, n)
	batch := make([]*tradeunit.Order, 0, 500)
	flush := func() {
		pays := make([]tradeunit.OrderChange, 0, len(batch))
		for i, r := range store.CreateOrders(ctx, batch) {
			if r.Err != nil || !r.Created {
				b.Fatalf("seed order: %+v", r)
			}
			pays = append(pays, tradeunit.OrderChange{Kind: tradeunit.ChangePay, Mchid: Mchid, OrderNo: batch[i].OrderNo,
				PaymentID: "seed-" + batch[i].OrderNo, At: now})
		}
		if paid {
			for _, r := range store.ChangeOrders(ctx, pays) {
				if r.Err != nil {
					b.Fatalf("seed pay: %+v", r)
				}
			}
		}
		batch = batch[:0]
	}
	for i := range n {
		no, err := orderno.New(1, now, uint64(i+1))
		if err != nil {
			b.Fatal(err)
		}
		nos = append(nos, no.String())
		batch = append(batch, &tradeunit.Order{OrderNo: no.String(), Mchid: Mchid, OutTradeNo: fmt.Sprintf("pay-bench-%d", i),
			Description: "pay benchmark", Amount: tradeunit.Amount{Total: 100, Currency: "CNY"}, CreateTime: now})
		if len(batch) == cap(batch) {
			flush()
		}
	}
	if len(batch) > 0 {
		flush()
	}
	return nos
}
