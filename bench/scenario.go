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
// the CPU each process group spent per acknowledged create.
type Layer struct {
	Name         string             `json:"name"` // storage, direct, full
	Clients      int                `json:"clients"`
	OrdersPerSec float64            `json:"orders_per_sec"`
	Latency      Latency            `json:"latency_ms"`
	Errors       int64              `json:"errors"`
	CPUPerOrder  map[string]float64 `json:"cpu_us_per_order"` // by process group
	Steal        float64            `json:"steal"`            // the machine's steal share over the run
	Verified     bool               `json:"verified"`
}

// BaselineRound is one measurement of each path at one client count, and
// the ratios taken within it.
type BaselineRound struct {
	Storage           Layer   `json:"storage"`
	Direct            Layer   `json:"direct"`
	Full              Layer   `json:"full"`
	FullOverLimit     float64 `json:"full_over_limit"`    // full path / storage limit, orders/s
	DirectOverLimit   float64 `json:"direct_over_limit"`  // one unit direct / storage limit, orders/s
	ProxyP50Overhead  float64 `json:"proxy_p50_overhead"` // full p50 / direct p50 - 1
	ServerCPUPerOrder float64 `json:"server_cpu_us_per_order"`
}

// BaselineRow is a client count's rounds, and the median and range of
// their ratios.
type BaselineRow struct {
	Clients           int             `json:"clients"`
	Rounds            []BaselineRound `json:"rounds"`
	FullOverLimit     Spread          `json:"full_over_limit"`
	DirectOverLimit   Spread          `json:"direct_over_limit"`
	ProxyP50Overhead  Spread          `json:"proxy_p50_overhead"`
	ServerCPUPerOrder Spread          `json:"server_cpu_us_per_order"`
	CoresForPeak      float64         `json:"cores_for_544k"` // at the median server CPU per order
}

// Baseline measures, in one run and for each client count, the storage
// limit (the create transaction straight to a unit's storage, one
// transaction per order), one unit called directly over gRPC, and the full
// path through a proxy process and the key directory: rounds times, the
// paths interleaved and their order rotated each round, so that neither
// always runs on the warmer or quieter machine. Ratios are taken within a
// round; a row reports their median and range.
func Baseline(ctx context.Context, env *Env, clients []int, rounds int, d time.Duration, progress io.Writer) ([]BaselineRow, error) {
	var rows []BaselineRow
	for _, c := range clients {
		row := BaselineRow{Clients: c}
		var full, direct, p50, cpu []float64
		for i := 0; i < rounds; i++ {
			var r BaselineRound
			paths := []func() error{
				func() (err error) { r.Storage, err = measureStorage(ctx, env, c, d, progress); return err },
				func() (err error) { r.Direct, err = measureDirect(ctx, env, c, d, progress); return err },
				func() (err error) {
					r.Full, err = measureFull(ctx, env, "full", WithDirectory, c, d, progress)
					return err
				},
			}
			for j := range paths {
				if err := paths[(i+j)%len(paths)](); err != nil {
					return nil, err
				}
			}
			if r.Storage.OrdersPerSec > 0 {
				r.FullOverLimit = r.Full.OrdersPerSec / r.Storage.OrdersPerSec
				r.DirectOverLimit = r.Direct.OrdersPerSec / r.Storage.OrdersPerSec
			}
			if r.Direct.Latency.P50 > 0 {
				r.ProxyP50Overhead = r.Full.Latency.P50/r.Direct.Latency.P50 - 1
			}
			r.ServerCPUPerOrder = serverCPU(r.Full)
			row.Rounds = append(row.Rounds, r)
			full, direct = append(full, r.FullOverLimit), append(direct, r.DirectOverLimit)
			p50, cpu = append(p50, r.ProxyP50Overhead), append(cpu, r.ServerCPUPerOrder)
		}
		row.FullOverLimit, row.DirectOverLimit = spreadOf(full), spreadOf(direct)
		row.ProxyP50Overhead, row.ServerCPUPerOrder = spreadOf(p50), spreadOf(cpu)
		row.CoresForPeak = row.ServerCPUPerOrder.Median * AlipayPeak / 1e6
		rows = append(rows, row)
	}
	return rows, nil
}

// measureStorage measures the storage limit over fresh storage, from this
// process: its CPU is the client's and, for SQLite, the storage's.
func measureStorage(ctx context.Context, env *Env, clients int, d time.Duration, progress io.Writer) (Layer, error) {
	dsn, err := env.NewStorage()
	if err != nil {
		return Layer{}, err
	}
	t, err := env.Target(ctx, dsn.String(), 1, clients)
	if err != nil {
		return Layer{}, err
	}
	defer t.Release()
	self := "client"
	if env.Storage == "sqlite" {
		self = "client+sqlite" // SQLite runs inside the client here
	}
	return measure(ctx, "storage", t, clients, d, map[string][]int{self: nil, "mariadbd": env.StoragePids()}, progress)
}

// measureDirect measures one unit's logic service called over gRPC, over
// fresh storage.
func measureDirect(ctx context.Context, env *Env, clients int, d time.Duration, progress io.Writer) (Layer, error) {
	unit, err := startUnitOn(ctx, env, 1)
	if err != nil {
		return Layer{}, err
	}
	defer unit.Stop()
	t, err := env.Target(ctx, "grpc://"+unit.Addr(), 1, clients)
	if err != nil {
		return Layer{}, err
	}
	defer t.Release()
	return measure(ctx, "direct", t, clients, d, map[string][]int{"client": nil, "unit": {unit.Pid()},
		"mariadbd": env.StoragePids()}, progress)
}

// measureFull measures the full path through a proxy process, with or
// without the key directory, over a fresh unit.
func measureFull(ctx context.Context, env *Env, name string, dir DirectoryMode, clients int, d time.Duration, progress io.Writer) (Layer, error) {
	unit, err := startUnitOn(ctx, env, 2)
	if err != nil {
		return Layer{}, err
	}
	defer unit.Stop()
	front, err := env.StartProxy(ctx, []*cluster.Replica{unit}, dir)
	if err != nil {
		return Layer{}, err
	}
	defer front.Stop()
	t, err := env.Target(ctx, "http://"+front.Proxy.Addr(), 2, clients)
	if err != nil {
		return Layer{}, err
	}
	defer t.Release()
	return measure(ctx, name, t, clients, d, map[string][]int{"client": nil, "proxy": {front.Proxy.Pid()},
		"directory": front.ShardPids(), "unit": {unit.Pid()}, "mariadbd": env.StoragePids()}, progress)
}

// serverCPU is the CPU a path's server layers spent per order.
func serverCPU(l Layer) float64 {
	return l.CPUPerOrder["proxy"] + l.CPUPerOrder["directory"] + l.CPUPerOrder["unit"] + l.CPUPerOrder["mariadbd"]
}

func startUnitOn(ctx context.Context, env *Env, id tradeunit.UnitID) (*cluster.Replica, error) {
	dsn, err := env.NewStorage()
	if err != nil {
		return nil, err
	}
	return env.StartUnit(ctx, id, dsn)
}

// measure runs a create-only closed loop against t and reads each process
// group's CPU over the run. Every acknowledged create is read back.
func measure(ctx context.Context, name string, t Target, clients int, d time.Duration, groups map[string][]int, progress io.Writer) (Layer, error) {
	for g, pids := range groups {
		if (g == "mariadbd" || g == "directory") && len(pids) == 0 { // nil is this process
			delete(groups, g)
		}
	}
	if progress != nil {
		fmt.Fprintf(progress, "%s, %d clients:\n", name, clients)
	}
	meter := NewCPUMeter(groups)
	res, err := Run(ctx, Config{Target: t, Concurrency: clients, Duration: d, Progress: progress})
	if err != nil {
		return Layer{}, err
	}
	used, steal := meter.Used(), meter.Steal()
	l := Layer{Name: name, Clients: clients, OrdersPerSec: res.CreatesPerSec, Latency: res.Latency,
		Errors: res.Errors, CPUPerOrder: map[string]float64{}, Steal: steal}
	for g, cpu := range used {
		if res.Creates > 0 {
			l.CPUPerOrder[g] = float64(cpu.Microseconds()) / float64(res.Creates)
		}
	}
	// Verification is outside the measured window.
	res2, err := verifyOnly(ctx, t, res)
	if err != nil {
		return Layer{}, err
	}
	l.Verified = res2
	return l, nil
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
			r, err := startUnitOn(ctx, env, tradeunit.UnitID(i))
			if err != nil {
				return nil, err
			}
			reps = append(reps, r)
			pids = append(pids, r.Pid())
		}
		front, err := env.StartProxy(ctx, reps, WithDirectory)
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
