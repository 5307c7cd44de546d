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
// (ChangeBatch.Disabled), in payRounds interleaved rounds per storage, each
// on a fresh storage. It reports pays/s, the CPU per pay of this process
// and of mariadbd, latency, the mean batch and the host's CPU steal.
// Give it a fixed count so that rounds compare:
//
//	go test -run='^$' -bench=PayGroupCommit -benchtime=4000x ./bench/
func BenchmarkPayGroupCommit(b *testing.B) {
	storages := []struct {
		name string
		open func(b *testing.B) (*sqlstore.Store, []int)
	}{
		{"sqlite", func(b *testing.B) (*sqlstore.Store, []int) {
			return openStore(b, dsn.MustParse("sqlite:"+filepath.Join(b.TempDir(), "unit.db"))), nil
		}},
		{"mysql", func(b *testing.B) (*sqlstore.Store, []int) {
			return openStore(b, storetest.NewMySQLDatabase(b)), (&Env{Storage: "mysql"}).StoragePids()
		}},
	}
	for _, st := range storages {
		for round := 1; round <= payRounds; round++ {
			for _, off := range []bool{false, true} {
				mode := map[bool]string{false: "batch-on", true: "batch-off"}[off]
				b.Run(fmt.Sprintf("%s/round%d/%s", st.name, round, mode), func(b *testing.B) {
					store, storagePids := st.open(b)
					runPays(b, store, storagePids, off)
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

// runPays creates b.N orders in store, untimed, and pays each once through
// a logic service over it.
func runPays(b *testing.B, store *sqlstore.Store, storagePids []int, batchOff bool) {
	ctx := context.Background()
	cfg := unit.DefaultConfig(1)
	cfg.ChangeBatch.Disabled = batchOff
	svc, err := unit.New(cfg, store)
	if err != nil {
		b.Fatal(err)
	}
	defer svc.Close()
	nos := seedOrders(b, store, b.N)

	var next atomic.Int64
	lat := make([][]time.Duration, payers)
	meter := NewCPUMeter(map[string][]int{"self": nil, "mariadbd": storagePids})
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := range payers {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(len(nos)); i = next.Add(1) - 1 {
				start := time.Now()
				_, err := svc.PayOrder(ctx, tradeunit.PayOrderRequest{Mchid: Mchid, OrderNo: nos[i], PaymentID: "pay-" + nos[i]})
				if err != nil {
					b.Errorf("pay %s: %v", nos[i], err)
					return
				}
				lat[w] = append(lat[w], time.Since(start))
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	used, steal := meter.Used(), meter.Steal()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pays/s")
	b.ReportMetric(float64(used["self"]/time.Microsecond)/float64(b.N), "cpu-µs/pay")
	if len(storagePids) > 0 {
		b.ReportMetric(float64(used["mariadbd"]/time.Microsecond)/float64(b.N), "mariadbd-µs/pay")
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) > 0 {
		b.ReportMetric(float64(all[len(all)/2])/float64(time.Microsecond), "p50-µs")
		b.ReportMetric(float64(all[len(all)*99/100])/float64(time.Microsecond), "p99-µs")
	}
	st := svc.ChangeStats()
	b.ReportMetric(float64(st.Items)/float64(max(st.Batches, 1)), "pays/batch")
	b.ReportMetric(100*steal, "steal%")
}

// seedOrders writes n NOTPAY orders of unit 1 straight into store, in
// batches, and returns their numbers.
func seedOrders(b *testing.B, store *sqlstore.Store, n int) []string {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	nos := make([]string, 0, n)
	batch := make([]*tradeunit.Order, 0, 500)
	flush := func() {
		for _, r := range store.CreateOrders(ctx, batch) {
			if r.Err != nil || !r.Created {
				b.Fatalf("seed order: %+v", r)
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
