package bench

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"time"

	"tradeunit"
	"tradeunit/cluster"
)

// AlipayPeak is the 2019 peak of Alipay payments per second (MISSION.md),
// the scale against which CPU per order is projected.
const AlipayPeak = 544_000

// Layer is one measured path in a baseline: its throughput and latency, and
// the CPU each process group spent per acknowledged create; then, over the
// orders those creates made, each other kind of operation measured alone.
type Layer struct {
	Name         string             `json:"name"` // storage, direct, full, full-unbatched
	Clients      int                `json:"clients"`
	OrdersPerSec float64            `json:"orders_per_sec"`
	Latency      Latency            `json:"latency_ms"`
	Errors       int64              `json:"errors"`
	CPUPerOrder  map[string]float64 `json:"cpu_us_per_order"` // by process group
	Steal        float64            `json:"steal"`            // the machine's steal share over the run
	Ops          []OpLayer          `json:"ops,omitempty"`
	Verified     bool               `json:"verified"`
}

// OpLayer is one kind of operation measured on a path on its own, a closed
// loop over the orders the path's creates made.
type OpLayer struct {
	Op       Op                 `json:"op"`
	PerSec   float64            `json:"per_sec"`
	Requests int64              `json:"requests"`
	Latency  Latency            `json:"latency_ms"`
	Errors   int64              `json:"errors"`
	CPUPerOp map[string]float64 `json:"cpu_us_per_op"` // by process group
	Steal    float64            `json:"steal"`
}

// Op returns the path's measurement of op, or nil.
func (l Layer) Op(op Op) *OpLayer {
	for i := range l.Ops {
		if l.Ops[i].Op == op {
			return &l.Ops[i]
		}
	}
	return nil
}

// BaselineOps are the operations a baseline measures after the creates, in
// this order: each one's orders are in the state it needs when it starts.
var BaselineOps = []Op{OpPay, OpQuery, OpQueryOut, OpRefund}

// Measurement is what every path of a scenario is measured with.
type Measurement struct {
	Clients  int
	Duration time.Duration // of the creates; see measureOp for the others
	Ops      []Op          // measured after the creates (BaselineOps), none if empty
	Progress io.Writer     // live lines, or nil
}

// BaselineRound is one measurement of each path at one client count, and
// the ratios taken within it.
type BaselineRound struct {
	Storage   Layer `json:"storage"`
	Direct    Layer `json:"direct"`
	Full      Layer `json:"full"`
	Unbatched Layer `json:"full_unbatched"` // the full path, same build, batching off everywhere
	Ratios
	// ByOp holds the same ratios for each operation of BaselineOps.
	ByOp map[Op]Ratios `json:"by_op,omitempty"`
}

// Ratios are a round's figures of one operation, taken within the round.
type Ratios struct {
	FullOverLimit     float64 `json:"full_over_limit"`    // full path / storage limit, per second
	DirectOverLimit   float64 `json:"direct_over_limit"`  // one unit direct / storage limit, per second
	ProxyP50Overhead  float64 `json:"proxy_p50_overhead"` // full p50 / direct p50 - 1
	FullP99OverLimit  float64 `json:"full_p99_over_limit"`
	ServerCPU         float64 `json:"server_cpu_us"` // per operation, full path
	CPUOverUnbatched  float64 `json:"cpu_over_unbatched"`
	FullOverUnbatched float64 `json:"full_over_unbatched"` // throughput
}

// Spreads are the median and range of a client count's Ratios over rounds.
type Spreads struct {
	FullOverLimit     Spread `json:"full_over_limit"`
	DirectOverLimit   Spread `json:"direct_over_limit"`
	ProxyP50Overhead  Spread `json:"proxy_p50_overhead"`
	FullP99OverLimit  Spread `json:"full_p99_over_limit"`
	ServerCPU         Spread `json:"server_cpu_us"`
	CPUOverUnbatched  Spread `json:"cpu_over_unbatched"`
	FullOverUnbatched Spread `json:"full_over_unbatched"`
}

func spreadsOf(rs []Ratios) Spreads {
	pick := func(f func(Ratios) float64) Spread {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		return spreadOf(v)
	}
	return Spreads{
		FullOverLimit:     pick(func(r Ratios) float64 { return r.FullOverLimit }),
		DirectOverLimit:   pick(func(r Ratios) float64 { return r.DirectOverLimit }),
		ProxyP50Overhead:  pick(func(r Ratios) float64 { return r.ProxyP50Overhead }),
		FullP99OverLimit:  pick(func(r Ratios) float64 { return r.FullP99OverLimit }),
		ServerCPU:         pick(func(r Ratios) float64 { return r.ServerCPU }),
		CPUOverUnbatched:  pick(func(r Ratios) float64 { return r.CPUOverUnbatched }),
		FullOverUnbatched: pick(func(r Ratios) float64 { return r.FullOverUnbatched }),
	}
}

// BaselineRow is a client count's rounds, and the median and range of
// their ratios.
type BaselineRow struct {
	Clients int             `json:"clients"`
	Rounds  []BaselineRound `json:"rounds"`
	Spreads
	ByOp         map[Op]Spreads `json:"by_op,omitempty"`
	CoresForPeak float64        `json:"cores_for_544k"` // at the median server CPU per order
}

// Baseline measures, in one run and for each client count, the storage
// limit (the create transaction straight to a unit's storage, one
// transaction per order), one unit called directly over gRPC, the full path
// through a proxy process and the key directory, and the full path with
// group commit off in the unit, the shard and the proxy's shard calls:
// rounds times, the paths interleaved and their order rotated each round,
// so that none always runs on the warmer or quieter machine. After its
// creates, each path measures m.Ops on their orders. Ratios are taken within
// a round; a row reports their median and range.
func Baseline(ctx context.Context, env *Env, m Measurement, clients []int, rounds int) ([]BaselineRow, error) {
	var rows []BaselineRow
	for _, c := range clients {
		m := m
		m.Clients = c
		row := BaselineRow{Clients: c, ByOp: map[Op]Spreads{}}
		var all []Ratios
		byOp := map[Op][]Ratios{}
		for i := 0; i < rounds; i++ {
			r := BaselineRound{ByOp: map[Op]Ratios{}}
			paths := []func() error{
				func() (err error) { r.Storage, err = measureStorage(ctx, env, m); return err },
				func() (err error) { r.Direct, err = measureDirect(ctx, env, m); return err },
				func() (err error) { r.Full, err = measureFull(ctx, env, "full", WithDirectory, Batched, m); return err },
				func() (err error) {
					r.Unbatched, err = measureFull(ctx, env, "full-unbatched", WithDirectory, Unbatched, m)
					return err
				},
			}
			for j := range paths {
				if err := paths[(i+j)%len(paths)](); err != nil {
					return nil, err
				}
			}
			r.Ratios = ratiosOf(r, "")
			all = append(all, r.Ratios)
			for _, op := range m.Ops {
				r.ByOp[op] = ratiosOf(r, op)
				byOp[op] = append(byOp[op], r.ByOp[op])
			}
			row.Rounds = append(row.Rounds, r)
		}
		row.Spreads = spreadsOf(all)
		for op, rs := range byOp {
			row.ByOp[op] = spreadsOf(rs)
		}
		row.CoresForPeak = row.ServerCPU.Median * AlipayPeak / 1e6
		rows = append(rows, row)
	}
	return rows, nil
}

// figures is one operation's throughput, latency and server CPU on a path.
type figures struct {
	perSec, p50, p99, serverCPU float64
}

func figuresOf(l Layer, op Op) figures {
	if op == "" || op == OpCreate {
		return figures{l.OrdersPerSec, l.Latency.P50, l.Latency.P99, serverCPU(l.CPUPerOrder)}
	}
	o := l.Op(op)
	if o == nil {
		return figures{}
	}
	return figures{o.PerSec, o.Latency.P50, o.Latency.P99, serverCPU(o.CPUPerOp)}
}

// ratiosOf takes op's ratios in round r ("": creates).
func ratiosOf(r BaselineRound, op Op) Ratios {
	limit, direct, full, unbatched := figuresOf(r.Storage, op), figuresOf(r.Direct, op), figuresOf(r.Full, op), figuresOf(r.Unbatched, op)
	div := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return a / b
	}
	return Ratios{
		FullOverLimit:     div(full.perSec, limit.perSec),
		DirectOverLimit:   div(direct.perSec, limit.perSec),
		ProxyP50Overhead:  div(full.p50, direct.p50) - 1,
		FullP99OverLimit:  div(full.p99, limit.p99),
		ServerCPU:         full.serverCPU,
		CPUOverUnbatched:  div(full.serverCPU, unbatched.serverCPU),
		FullOverUnbatched: div(full.perSec, unbatched.perSec),
	}
}

// measureStorage measures the storage limit over fresh storage, from this
// process: its CPU is the client's and, for SQLite, the storage's.
func measureStorage(ctx context.Context, env *Env, m Measurement) (Layer, error) {
	dsn, err := env.NewStorage()
	if err != nil {
		return Layer{}, err
	}
	t, err := env.Target(ctx, dsn.String(), 1, m.Clients)
	if err != nil {
		return Layer{}, err
	}
	defer t.Release()
	self := "client"
	if env.Storage == "sqlite" {
		self = "client+sqlite" // SQLite runs inside the client here
	}
	return measure(ctx, "storage", t, m, map[string][]int{self: nil, "mariadbd": env.StoragePids()})
}

// measureDirect measures one unit's logic service called over gRPC, over
// fresh storage.
func measureDirect(ctx context.Context, env *Env, m Measurement) (Layer, error) {
	unit, err := startUnitOn(ctx, env, 1, Batched)
	if err != nil {
		return Layer{}, err
	}
	defer unit.Stop()
	t, err := env.Target(ctx, "grpc://"+unit.Addr(), 1, m.Clients)
	if err != nil {
		return Layer{}, err
	}
	defer t.Release()
	return measure(ctx, "direct", t, m, map[string][]int{"client": nil, "unit": {unit.Pid()}, "mariadbd": env.StoragePids()})
}

// measureFull measures the full path through a proxy process, with or
// without the key directory, over a fresh unit.
func measureFull(ctx context.Context, env *Env, name string, dir DirectoryMode, b Batching, m Measurement) (Layer, error) {
	unit, err := startUnitOn(ctx, env, 2, b)
	if err != nil {
		return Layer{}, err
	}
	defer unit.Stop()
	front, err := env.StartProxy(ctx, []*cluster.Replica{unit}, dir, b)
	if err != nil {
		return Layer{}, err
	}
	defer front.Stop()
	t, err := env.Target(ctx, "http://"+front.Proxy.Addr(), 2, m.Clients)
	if err != nil {
		return Layer{}, err
	}
	defer t.Release()
	return measure(ctx, name, t, m, map[string][]int{"client": nil, "proxy": {front.Proxy.Pid()},
		"directory": front.ShardPids(), "unit": {unit.Pid()}, "mariadbd": env.StoragePids()})
}

// serverCPU is the CPU a path's server layers spent per operation.
func serverCPU(cpu map[string]float64) float64 {
	return cpu["proxy"] + cpu["directory"] + cpu["unit"] + cpu["mariadbd"]
}

func startUnitOn(ctx context.Context, env *Env, id tradeunit.UnitID, b Batching) (*cluster.Replica, error) {
	dsn, err := env.NewStorage()
	if err != nil {
		return nil, err
	}
	return env.StartUnit(ctx, id, dsn, b)
}

// measure runs a create-only closed loop against t, then m.Ops each alone
// over the orders it made, and reads each process group's CPU over each
// run. Every acknowledged order is read back at the end, outside the
// measured windows.
func measure(ctx context.Context, name string, t Target, m Measurement, groups map[string][]int) (Layer, error) {
	for g, pids := range groups {
		if (g == "mariadbd" || g == "directory") && len(pids) == 0 { // nil is this process
			delete(groups, g)
		}
	}
	if m.Progress != nil {
		fmt.Fprintf(m.Progress, "%s, %d clients:\n", name, m.Clients)
	}
	meter := NewCPUMeter(groups)
	res, err := Run(ctx, Config{Target: t, Concurrency: m.Clients, Duration: m.Duration, Progress: m.Progress})
	if err != nil {
		return Layer{}, err
	}
	used, steal := meter.Used(), meter.Steal()
	l := Layer{Name: name, Clients: m.Clients, OrdersPerSec: res.CreatesPerSec, Latency: res.Latency,
		Errors: res.Errors, CPUPerOrder: perOp(used, res.Creates), Steal: steal}
	last := res
	for _, op := range m.Ops {
		if m.Progress != nil {
			fmt.Fprintf(m.Progress, "%s, %d clients, %s:\n", name, m.Clients, op)
		}
		o, r, err := measureOp(ctx, t, m, op, res, groups)
		if err != nil {
			return Layer{}, err
		}
		l.Ops, last = append(l.Ops, o), r
	}
	if l.Verified, err = verifyOnly(ctx, t, last); err != nil {
		return Layer{}, err
	}
	return l, nil
}

// measureOp runs op alone on the orders whose creates were acknowledged, each client
// until none is left in the state op needs (pays: each order once; refunds:
// up to four per paid order) or for the measurement's duration (queries:
// half of it).
func measureOp(ctx context.Context, t Target, m Measurement, op Op, created *Result, groups map[string][]int) (OpLayer, *Result, error) {
	cfg := Config{Target: t, Concurrency: m.Clients, Duration: m.Duration, Mix: Mix{op: 1}, After: created, Progress: m.Progress}
	if op == OpQuery || op == OpQueryOut {
		cfg.Duration = m.Duration / 2
	}
	meter := NewCPUMeter(groups)
	res, err := Run(ctx, cfg)
	if err != nil {
		return OpLayer{}, nil, err
	}
	used, steal := meter.Used(), meter.Steal()
	n := res.PerOp[op]
	if n == nil || n.Requests == 0 {
		return OpLayer{}, nil, fmt.Errorf("%s: no orders to measure it on", op)
	}
	ok := n.Requests - n.Errors
	return OpLayer{Op: op, PerSec: float64(ok) / res.Seconds, Requests: n.Requests, Latency: n.Latency,
		Errors: n.Errors, CPUPerOp: perOp(used, ok), Steal: steal}, res, nil
}

// perOp divides each group's CPU by n operations, in µs.
func perOp(used map[string]time.Duration, n int64) map[string]float64 {
	out := map[string]float64{}
	for g, cpu := range used {
		if n > 0 {
			out[g] = float64(cpu.Microseconds()) / float64(n)
		}
	}
	return out
}

func verifyOnly(ctx context.Context, t Target, res *Result) (bool, error) {
	v := res.Verify(ctx, t)
	if !v.OK() {
		return false, fmt.Errorf("verification failed: %d lost, %d mismatched, %d unreadable of %d: %v",
			v.Lost, v.Mismatched, v.Unreadable, v.Orders, v.Examples)
	}
	return true, nil
}

// ScalingPoint is the full path's throughput with n units.
type ScalingPoint struct {
	Units        int     `json:"units"`
	OrdersPerSec float64 `json:"orders_per_sec"`
	P99          float64 `json:"p99_ms"`
	Efficiency   float64 `json:"efficiency"` // throughput(n) / (n × throughput(1))
	CPUBusy      float64 `json:"cpu_busy"`   // share of the machine's cores the cluster and client used
	Errors       int64   `json:"errors"`
}

// Scaling measures the full path with each number of units (SQLite: one
// writer per file, so units add write parallelism) under the same client load.
func Scaling(ctx context.Context, env *Env, units []int, clients int, d time.Duration, progress io.Writer) ([]ScalingPoint, error) {
	var out []ScalingPoint
	for _, n := range units {
		var reps []*cluster.Replica
		var pids []int
		for i := 1; i <= n; i++ {
			r, err := startUnitOn(ctx, env, tradeunit.UnitID(i), Batched)
			if err != nil {
				return nil, err
			}
			reps = append(reps, r)
			pids = append(pids, r.Pid())
		}
		front, err := env.StartProxy(ctx, reps, WithDirectory, Batched)
		if err != nil {
			return nil, err
		}
		t, err := env.Target(ctx, "http://"+front.Proxy.Addr(), 1, clients)
		if err != nil {
			return nil, err
		}
		if progress != nil {
			fmt.Fprintf(progress, "%d units, %d clients:\n", n, clients)
		}
		meter := NewCPUMeter(map[string][]int{"client": nil, "servers": append(append(pids, front.Proxy.Pid()), front.ShardPids()...)})
		start := time.Now()
		res, err := Run(ctx, Config{Target: t, Concurrency: clients, Duration: d, Progress: progress})
		if err != nil {
			return nil, err
		}
		wall := time.Since(start)
		used := meter.Used()
		if _, err := verifyOnly(ctx, t, res); err != nil {
			return nil, err
		}
		t.Release()
		for _, r := range reps {
			r.Stop()
		}
		front.Stop()
		p := ScalingPoint{Units: n, OrdersPerSec: res.CreatesPerSec, P99: res.Latency.P99, Errors: res.Errors,
			CPUBusy: (used["client"] + used["servers"]).Seconds() / (wall.Seconds() * float64(runtime.NumCPU()))}
		out = append(out, p)
	}
	for i := range out {
		if out[0].OrdersPerSec > 0 {
			out[i].Efficiency = out[i].OrdersPerSec / (float64(out[i].Units) * out[0].OrdersPerSec / float64(out[0].Units))
		}
	}
	return out, nil
}
