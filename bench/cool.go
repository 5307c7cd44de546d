package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"tradeunit"
	"tradeunit/cluster"
	"tradeunit/dsn"
	"tradeunit/lifecycle"
	"tradeunit/orderno"
	"tradeunit/pki"
	"tradeunit/routing"
	"tradeunit/rpc"
	"tradeunit/secrets"
	"tradeunit/store/sqlstore"
	unitpkg "tradeunit/unit"
)

// CoolConfig is the load of a cool benchmark.
type CoolConfig struct {
	Orders  int           // orders written into unit 1 before the move
	Hot     int           // of them, how many the clients pay, refund and read
	Clients int           // concurrent clients through the proxy
	Rounds  int           // each on a fresh cluster
	Before  time.Duration // load before the move: the latency baseline
}

// DefaultCoolConfig returns the load of tradeunit bench cool.
func DefaultCoolConfig() CoolConfig {
	return CoolConfig{Orders: 20000, Hot: 300, Clients: 8, Rounds: 3, Before: 5 * time.Second}
}

// CoolRound is one move of a warm unit to cold storage under load.
type CoolRound struct {
	LiveRows     int64                  `json:"live_rows"`  // copied in the copying step (all passes)
	LiveBytes    int64                  `json:"live_bytes"` // their size
	LiveTook     time.Duration          `json:"live_took"`  // the copying step
	RowsPerSec   float64                `json:"rows_per_sec"`
	MBPerSec     float64                `json:"mb_per_sec"` // 10^6 bytes
	FreezeWindow time.Duration          `json:"freeze_window"`
	Slowest      time.Duration          `json:"slowest_update"`    // during the move
	P99Before    time.Duration          `json:"p99_update_before"` // updates: pays and refunds
	P99During    time.Duration          `json:"p99_update_during"`
	Calls        int                    `json:"calls"` // every call of the load, the move's included
	Failed       int                    `json:"failed"`
	FirstFailure string                 `json:"first_failure,omitempty"`
	Steal        float64                `json:"steal"` // of the machine's CPU, from the load's start to the move's end
	Steps        []lifecycle.StepReport `json:"steps"`
}

// CoolResult is a cool benchmark's rounds and their medians.
type CoolResult struct {
	Storage     string      `json:"storage"`
	Config      CoolConfig  `json:"config"`
	Rounds      []CoolRound `json:"rounds"`
	RowsPerSec  Spread      `json:"rows_per_sec"`
	MBPerSec    Spread      `json:"mb_per_sec"`
	FreezeMs    Spread      `json:"freeze_ms"`
	SlowestMs   Spread      `json:"slowest_update_ms"`
	P99BeforeMs Spread      `json:"p99_update_before_ms"`
	P99DuringMs Spread      `json:"p99_update_during_ms"`
	Steal       Spread      `json:"steal"`
	Failed      int         `json:"failed"`
	LastError   string      `json:"-"`
}

// Cool measures the move of a warm unit to cold storage (lifecycle.Mover,
// in this process, with Retire) while clients pay, refund and read the
// unit's orders through the proxy and create orders on the other units:
// each round on a fresh cluster of 3 units × 2 logic replicas over env's
// storage, unit 1 filled with cfg.Orders orders (half of them paid)
// straight into its storage. It returns an error if any call failed.
func Cool(ctx context.Context, env *Env, cfg CoolConfig, progress io.Writer) (*CoolResult, error) {
	res := &CoolResult{Storage: env.Storage, Config: cfg}
	for i := range cfg.Rounds {
		r, err := coolRound(ctx, env, cfg, i+1, progress)
		if err != nil {
			return res, fmt.Errorf("round %d: %w", i+1, err)
		}
		fmt.Fprintf(progress, "round %d: %.0f rows/s live, freeze %v, slowest update %v, %d calls, %d failed, steal %.1f%%\n",
			i+1, r.RowsPerSec, r.FreezeWindow.Round(time.Millisecond), r.Slowest.Round(time.Millisecond), r.Calls, r.Failed, 100*r.Steal)
		for _, s := range r.Steps {
			fmt.Fprintf(progress, "  %-10s %9v  %s\n", s.Step, s.Took.Round(100*time.Microsecond), s.Note)
		}
		res.Rounds = append(res.Rounds, r)
		res.Failed += r.Failed
		if r.FirstFailure != "" && res.LastError == "" {
			res.LastError = r.FirstFailure
		}
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	var rate, mb, freeze, slowest, before, during, steal []float64
	for _, r := range res.Rounds {
		rate, mb, steal = append(rate, r.RowsPerSec), append(mb, r.MBPerSec), append(steal, r.Steal)
		freeze, slowest = append(freeze, ms(r.FreezeWindow)), append(slowest, ms(r.Slowest))
		before, during = append(before, ms(r.P99Before)), append(during, ms(r.P99During))
	}
	res.RowsPerSec, res.MBPerSec, res.FreezeMs, res.SlowestMs = spreadOf(rate), spreadOf(mb), spreadOf(freeze), spreadOf(slowest)
	res.P99BeforeMs, res.P99DuringMs, res.Steal = spreadOf(before), spreadOf(during), spreadOf(steal)
	if res.Failed > 0 {
		return res, fmt.Errorf("%d calls failed during the moves, first: %s", res.Failed, res.LastError)
	}
	return res, nil
}

func coolRound(ctx context.Context, env *Env, cfg CoolConfig, round int, progress io.Writer) (CoolRound, error) {
	var r CoolRound
	units := map[tradeunit.UnitID]dsn.DSN{}
	for id := tradeunit.UnitID(1); id <= 3; id++ {
		d, err := env.NewStorage()
		if err != nil {
			return r, err
		}
		units[id] = d
	}
	shard, err := env.NewStorage()
	if err != nil {
		return r, err
	}
	cold, err := env.NewStorage()
	if err != nil {
		return r, err
	}
	ccfg := cluster.DefaultConfig(filepath.Join(env.Dir, fmt.Sprintf("cool-%d", round)), env.Binary)
	ccfg.Units, ccfg.Replicas, ccfg.Shards, ccfg.ShardReplicas = 3, 2, 1, 1
	ccfg.Storage = func(id tradeunit.UnitID) routing.Storage { return routing.Storage{Primary: units[id]} }
	ccfg.ShardStorage = func(routing.ShardID) routing.Storage { return routing.Storage{Primary: shard} }
	ccfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	c, err := cluster.Start(ctx, ccfg)
	if err != nil {
		return r, err
	}
	defer c.Close()
	merchant := c.Credentials.Merchants[0]

	start := time.Now()
	hot, err := fillUnit(ctx, units[1], merchant.Mchid, cfg.Orders, cfg.Hot, fmt.Sprintf("cool%d-%d", round, start.UnixNano()))
	if err != nil {
		return r, fmt.Errorf("fill unit 1: %w", err)
	}
	fmt.Fprintf(progress, "round %d: %d orders written into unit 1 in %v\n", round, cfg.Orders, time.Since(start).Round(time.Millisecond))

	opts := routing.DefaultOptions()
	opts.Logger = ccfg.Logger
	routes, err := routing.Open(ctx, c.RoutesPath, opts)
	if err != nil {
		return r, err
	}
	defer routes.Close()
	topology, err := routing.OpenTopology(ctx, c.RoutesPath, opts)
	if err != nil {
		return r, err
	}
	defer topology.Close()
	if _, err := routes.Update(ctx, routing.Change{Who: "bench", What: "unit warm 1"}, func(t *routing.Table) error {
		u, _ := t.Unit(1)
		u.Temperature, u.AcceptNew = routing.Warm, false
		return nil
	}); err != nil {
		return r, err
	}
	if err := waitUntil(ctx, 10*time.Second, func() bool { u, _ := c.Routes().Unit(1); return u.Temperature == routing.Warm }); err != nil {
		return r, fmt.Errorf("the cluster to see unit 1 warm: %w", err)
	}

	keys, err := pki.Load(c.AdminTLS())
	if err != nil {
		return r, err
	}
	pool := rpc.NewPool(rpc.WithKeys(keys)...)
	defer pool.Close()
	m, err := lifecycle.NewMover(lifecycle.Config{RangeRows: 500, LivePasses: 2, MaxFreeze: time.Second, Settle: time.Second, Retire: true},
		lifecycle.Deps{Routes: routes, Topology: topology, Passwords: secrets.FromEnv(os.Getenv), Dialer: pool,
			Who: "bench", Why: "bench cool", Logger: slog.New(slog.NewTextHandler(progress, &slog.HandlerOptions{Level: slog.LevelWarn})),
			Progress: r.countLive()})
	if err != nil {
		return r, err
	}

	machine, _ := ReadMachineTicks()
	load := startCoolLoad(ctx, newHTTPTarget(c.ProxyURL, merchant.APIKey, cfg.Clients), hot, cfg.Clients, round)
	select {
	case <-time.After(cfg.Before):
	case <-ctx.Done():
	}
	moveStart := time.Now()
	rep, err := m.Move(ctx, 1, cold)
	moveEnd := time.Now()
	now, _ := ReadMachineTicks()
	calls := load.stop()
	if err != nil {
		return r, fmt.Errorf("move: %w", err)
	}
	r.Steal = StealShare(machine, now)
	r.Steps, r.FreezeWindow = rep.Steps, rep.FreezeWindow
	for _, s := range rep.Steps {
		if s.Step == routing.Copying {
			r.LiveTook += s.Took
		}
	}
	if r.LiveTook > 0 {
		r.RowsPerSec = float64(r.LiveRows) / r.LiveTook.Seconds()
		r.MBPerSec = float64(r.LiveBytes) / 1e6 / r.LiveTook.Seconds()
	}
	var before, during []time.Duration
	for _, call := range calls {
		r.Calls++
		if call.err != nil {
			r.Failed++
			if r.FirstFailure == "" {
				r.FirstFailure = fmt.Sprintf("%s %s: %v", call.op, call.orderNo, call.err)
			}
		}
		if call.op != OpPay && call.op != OpRefund {
			continue
		}
		switch {
		case call.start.Before(moveStart):
			before = append(before, call.took)
		case call.start.Before(moveEnd):
			during = append(during, call.took)
			r.Slowest = max(r.Slowest, call.took)
		}
	}
	r.P99Before, r.P99During = p99(before), p99(during)
	return r, nil
}

// countLive returns a Mover's progress callback that sums the rows and
// bytes the copying step copies over its passes (each pass reports its own
// running totals, from zero).
func (r *CoolRound) countLive() func(lifecycle.Progress) {
	var last sqlstore.SyncProgress
	var rows, bytes int64
	return func(p lifecycle.Progress) {
		if p.Step != routing.Copying {
			return
		}
		if p.RowsChecked < last.RowsChecked { // a new pass
			rows, bytes = rows+last.Rows, bytes+last.Bytes
		}
		last = p.SyncProgress
		r.LiveRows, r.LiveBytes = rows+last.Rows, bytes+last.Bytes
	}
}

// fillUnit writes n orders of mchid straight into d, in batches of 500,
// numbered as the logic service numbers them, and pays every other one;
// it returns hot of them, spread over the whole unit.
func fillUnit(ctx context.Context, d dsn.DSN, mchid string, n, hot int, prefix string) ([]string, error) {
	s, err := sqlstore.Open(ctx, d, secrets.FromEnv(os.Getenv))
	if err != nil {
		return nil, err
	}
	defer s.Close()
	if err := s.BindUnit(ctx, 1); err != nil {
		return nil, err
	}
	seq := unitpkg.NewSequencer(s, unitpkg.DefaultSequenceBlock)
	var all []string
	for len(all) < n {
		batch := make([]*tradeunit.Order, 0, min(500, n-len(all)))
		now := time.Now().UTC().Truncate(time.Microsecond)
		for range cap(batch) {
			next, err := seq.Next(ctx)
			if err != nil {
				return nil, err
			}
			no, err := orderno.New(1, now, next)
			if err != nil {
				return nil, err
			}
			batch = append(batch, &tradeunit.Order{OrderNo: no.String(), Mchid: mchid, OutTradeNo: fmt.Sprintf("%s-%d", prefix, len(all)+len(batch)),
				Description: "bench cool", Amount: tradeunit.Amount{Total: 100000, Currency: "CNY"}, CreateTime: now})
		}
		for _, res := range s.CreateOrders(ctx, batch) {
			if res.Err != nil {
				return nil, res.Err
			}
			all = append(all, res.Stored.OrderNo)
		}
	}
	// Pay every other order, from 4 connections.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for w := range 4 {
		wg.Go(func() {
			for i := 2 * w; i < len(all) && errs[w] == nil; i += 8 {
				_, errs[w] = s.PayOrder(ctx, mchid, all[i], "pay-"+all[i], time.Now())
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var out []string
	for i := range min(hot, n) {
		out = append(out, all[i*n/min(hot, n)])
	}
	return out, nil
}

// coolCall is one call of the load.
type coolCall struct {
	op      Op
	orderNo string
	start   time.Time
	took    time.Duration
	err     error
}

// coolLoad is the clients of a cool round: each in turn pays one of the hot
// orders (the same payment each time: a repeated pay is answered as the
// first), refunds 1 fen of it, reads it and creates an order elsewhere.
type coolLoad struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	calls  [][]coolCall
}

func startCoolLoad(ctx context.Context, t *httpTarget, hot []string, clients, round int) *coolLoad {
	ctx, cancel := context.WithCancel(ctx)
	l := &coolLoad{cancel: cancel, calls: make([][]coolCall, clients)}
	for w := range clients {
		l.wg.Go(func() {
			for i := w; ctx.Err() == nil; i += clients {
				o := hot[i%len(hot)]
				l.do(ctx, w, OpPay, o, func() error { return t.Pay(ctx, o, "pay-"+o) })
				l.do(ctx, w, OpRefund, o, func() error { return t.Refund(ctx, o, fmt.Sprintf("r%d-%d-%d", round, w, i), 1) })
				l.do(ctx, w, OpQuery, o, func() error { _, _, err := t.Query(ctx, o); return err })
				l.do(ctx, w, OpCreate, "", func() error {
					_, _, err := t.Create(ctx, fmt.Sprintf("cool%d-%d-%d-%d", round, time.Now().UnixNano(), w, i), 1000)
					return err
				})
			}
		})
	}
	return l
}

func (l *coolLoad) do(ctx context.Context, w int, op Op, orderNo string, call func() error) {
	start := time.Now()
	err := call()
	if ctx.Err() != nil {
		return // stopped: the call's outcome does not count
	}
	l.calls[w] = append(l.calls[w], coolCall{op: op, orderNo: orderNo, start: start, took: time.Since(start), err: err})
}

// stop stops the clients and returns their calls.
func (l *coolLoad) stop() []coolCall {
	l.cancel()
	l.wg.Wait()
	return slices.Concat(l.calls...)
}

func p99(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[(len(d)-1)*99/100]
}

func waitUntil(ctx context.Context, limit time.Duration, ok func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for !ok() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// PrintCool prints a cool benchmark's rounds and medians.
func PrintCool(w io.Writer, r *CoolResult) {
	fmt.Fprintf(w, "moving a warm unit of %d orders to cold storage (%s), %d clients paying, refunding, reading %d of its orders and creating elsewhere\n",
		r.Config.Orders, r.Storage, r.Config.Clients, r.Config.Hot)
	fmt.Fprintln(w, "| round | live copy rows/s | MB/s | rows copied live | freeze window | slowest update during | update p99 before / during | calls | failed | steal |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|")
	ms := func(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }
	for i, x := range r.Rounds {
		fmt.Fprintf(w, "| %d | %.0f | %.2f | %d in %v | %s | %s | %s / %s | %d | %d | %.1f%% |\n", i+1, x.RowsPerSec, x.MBPerSec,
			x.LiveRows, x.LiveTook.Round(time.Millisecond), ms(x.FreezeWindow), ms(x.Slowest), ms(x.P99Before), ms(x.P99During), x.Calls, x.Failed, 100*x.Steal)
	}
	sp := func(s Spread, f string) string {
		return fmt.Sprintf(f+" ("+f+"–"+f+")", s.Median, s.Min, s.Max)
	}
	fmt.Fprintf(w, "| median (range) | %s | %s | | %s ms | %s ms | %s / %s ms | | %d | %s %% |\n",
		sp(r.RowsPerSec, "%.0f"), sp(r.MBPerSec, "%.2f"), sp(r.FreezeMs, "%.0f"), sp(r.SlowestMs, "%.0f"),
		sp(r.P99BeforeMs, "%.0f"), sp(r.P99DuringMs, "%.0f"), r.Failed, sp(scale(r.Steal, 100), "%.1f"))
}

func scale(s Spread, k float64) Spread {
	return Spread{Median: s.Median * k, Min: s.Min * k, Max: s.Max * k}
}
