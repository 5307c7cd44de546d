package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"tradeunit"
	"tradeunit/bench"
	"tradeunit/cluster"
	"tradeunit/daemon"
	"tradeunit/pki"
	"tradeunit/rpc"
)

var (
	benchCmd = &command{
		name:  "bench",
		usage: "run|baseline|directory|scaling|cool|smoke [flags]",
		short: "measure throughput, latency and CPU per order; verify that no acknowledged order is lost (see bench/README.md)",
		sub:   []*command{benchRunCmd, benchBaselineCmd, benchDirectoryCmd, benchScalingCmd, benchCoolCmd, benchSmokeCmd},
	}
	benchRunCmd = &command{name: "run", usage: "--target TARGET [flags]", run: benchRun,
		short: "drive one target (a proxy, a unit's logic services, or a storage) with a load"}
	benchBaselineCmd = &command{name: "baseline", usage: "[--storage sqlite|mysql] [--clients 16,64] [--rounds 3] [--duration 10s] [--ops pay,query,query-out,refund]", run: benchBaseline,
		short: "storage limit, one unit direct, full path, and full path with batching off, for creates and each other operation; interleaved rounds in one run"}
	benchDirectoryCmd = &command{name: "directory", usage: "[--storage sqlite|mysql] [--clients 16,64] [--rounds 3] [--duration 10s]", run: benchDirectory,
		short: "create throughput and CPU per order with and without the key directory, interleaved rounds in one run"}
	benchScalingCmd = &command{name: "scaling", usage: "[--units 1,2,4,8] [--clients 64] [--duration 10s]", run: benchScaling,
		short: "full-path throughput with 1, 2, 4, 8 SQLite units under the same client load"}
	benchCoolCmd = &command{name: "cool", usage: "[--storage sqlite|mysql] [--orders 20000] [--clients 8] [--rounds 3]", run: benchCool,
		short: "move a warm unit to cold storage under load, each round on a fresh cluster: live copy rate, freeze window, update latency"}
	benchSmokeCmd = &command{name: "smoke", usage: "[--duration 10s] [--clients 16]", run: benchSmoke,
		short: "a local cluster under a mixed load; fails if an acknowledged order is lost"}
)

// loadFlags are the flags every load-generating mode shares.
type loadFlags struct {
	clients  *int
	rate     *float64
	duration *time.Duration
	requests *int
	mix      *string
	jsonOut  *string
}

func addLoadFlags(fs *flag.FlagSet) loadFlags {
	return loadFlags{
		clients:  fs.Int("clients", 16, "closed loop: concurrent clients; open loop: most requests in flight"),
		rate:     fs.Float64("rate", 0, "open loop: requests per second (0: closed loop)"),
		duration: fs.Duration("duration", 10*time.Second, "how long to run"),
		requests: fs.Int("requests", 0, "stop after this many requests (0: run for --duration)"),
		mix:      fs.String("mix", "create=1", "operation weights, e.g. create=4,pay=3,query=6,refund=1,close=1"),
		jsonOut:  fs.String("json", "", "also write the result as JSON to this file (- for stdout)"),
	}
}

func (lf loadFlags) config(t bench.Target) (bench.Config, error) {
	mix, err := bench.ParseMix(*lf.mix)
	if err != nil {
		return bench.Config{}, err
	}
	return bench.Config{Target: t, Concurrency: *lf.clients, Rate: *lf.rate, Duration: *lf.duration,
		Requests: *lf.requests, Mix: mix, Progress: os.Stderr, Verify: true}, nil
}

func benchRun(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	target := fs.String("target", "", "http://PROXY (with --key), grpc://ADDR[,ADDR] (with --mchid), or a storage DSN (sqlite:PATH, mysql:DSN)")
	key := fs.String("key", "", "API key for an http:// target")
	mchid := fs.String("mchid", bench.Mchid, "merchant for grpc:// and storage targets")
	unit := tradeunit.UnitID(1)
	daemon.UnitVar(fs, &unit, "unit", "unit number for a storage target's order numbers")
	var files pki.Files // a grpc:// target's caller certificate (role proxy)
	files.Flags(fs)
	lf := addLoadFlags(fs)
	if err := noArgs(e, fs, args); err != nil {
		return err
	}
	if err := unit.Validate(); err != nil {
		return usageErrorf("--unit: %s", tradeunit.ErrorMessage(err))
	}
	keys, err := pki.LoadIfEnabled(files)
	if err != nil {
		return err
	}
	t, err := bench.OpenTarget(ctx, *target, *key, *mchid, unit, *lf.clients, rpc.WithKeys(keys)...)
	if err != nil {
		return err
	}
	defer t.Release()
	cfg, err := lf.config(t)
	if err != nil {
		return err
	}
	return runAndReport(ctx, cfg, *lf.jsonOut, e.stdout)
}

// runAndReport runs one load, prints it, and fails if an order was lost.
func runAndReport(ctx context.Context, cfg bench.Config, jsonOut string, stdout io.Writer) error {
	res, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	bench.PrintResult(stdout, res)
	if err := writeJSON(jsonOut, res, stdout); err != nil {
		return err
	}
	if v := res.Verification; v != nil && !v.OK() {
		return fmt.Errorf("verification failed: %d lost, %d mismatched, %d unreadable", v.Lost, v.Mismatched, v.Unreadable)
	}
	return nil
}

func writeJSON(path string, v any, stdout io.Writer) error {
	if path == "" {
		return nil
	}
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if path == "-" {
		_, err = fmt.Fprintf(stdout, "%s\n", data)
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

// scenarioEnv makes the process environment of a scenario.
func scenarioEnv(storage, dir string) (*bench.Env, func(), error) {
	bin, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() {}
	if dir == "" {
		if dir, err = os.MkdirTemp("", "tradeunit-bench-"); err != nil {
			return nil, nil, err
		}
		cleanup = func() { os.RemoveAll(dir) }
	}
	env := &bench.Env{Binary: bin, Dir: dir, Storage: storage, MySQL: os.Getenv("TRADEUNIT_BENCH_MYSQL")}
	return env, func() { env.Close(); cleanup() }, nil
}

// scenarioFlags are the flags of the scenarios that compare paths over
// storage of one kind at several client counts.
type scenarioFlags struct {
	storage, clients, dir, jsonOut *string
	rounds                         *int
	duration                       *time.Duration
}

func addScenarioFlags(fs *flag.FlagSet) *scenarioFlags {
	return &scenarioFlags{
		storage:  fs.String("storage", "sqlite", "sqlite or mysql (MariaDB at $TRADEUNIT_BENCH_MYSQL, default mysql:root@tcp(127.0.0.1:3306)/)"),
		clients:  fs.String("clients", "16,64", "client counts, comma-separated"),
		duration: fs.Duration("duration", 10*time.Second, "length of each measurement"),
		rounds:   fs.Int("rounds", 3, "rounds per client count, the paths interleaved and their order rotated each round"),
		dir:      fs.String("dir", "", "keep data and logs here (default: a temporary directory)"),
		jsonOut:  fs.String("json", "", "also write the figures as JSON to this file"),
	}
}

// measurement is what each path is measured with, but for the client
// count, which each row sets.
func (f *scenarioFlags) measurement() bench.Measurement {
	return bench.Measurement{Duration: *f.duration, Progress: os.Stderr}
}

// joinOps is "pay,query,...".
func joinOps(ops []bench.Op) string {
	names := make([]string, len(ops))
	for i, op := range ops {
		names[i] = string(op)
	}
	return strings.Join(names, ",")
}

// start parses the client counts and prepares the scenario's processes.
func (f *scenarioFlags) start() (*bench.Env, []int, func(), error) {
	counts, err := intList(*f.clients)
	if err != nil {
		return nil, nil, nil, usageErrorf("--clients %v", err)
	}
	if *f.rounds < 1 {
		return nil, nil, nil, usageErrorf("--rounds %d: want at least 1", *f.rounds)
	}
	env, cleanup, err := scenarioEnv(*f.storage, *f.dir)
	return env, counts, cleanup, err
}

func benchBaseline(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	sf := addScenarioFlags(fs)
	ops := fs.String("ops", joinOps(bench.BaselineOps), "operations measured after the creates, each alone on their orders; \"\" for creates only")
	batchWait := fs.Duration("batch-wait", 0, "every batching process's batch-wait (how long a batch's first item waits for others); 0: each program's default")
	replicated := fs.Bool("replicated", false, "mysql storage on a replicated set started for the run: a primary and two semi-sync replicas, binlog, sync_binlog=1 (as tradeunit mariadb up)")
	if err := noArgs(e, fs, args); err != nil {
		return err
	}
	m := sf.measurement()
	for _, name := range strings.Split(*ops, ",") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		if !slices.Contains(bench.BaselineOps, bench.Op(name)) {
			return usageErrorf("--ops %q: want some of %s", *ops, joinOps(bench.BaselineOps))
		}
		m.Ops = append(m.Ops, bench.Op(name))
	}
	env, counts, cleanup, err := sf.start()
	if err != nil {
		return err
	}
	defer cleanup()
	env.BatchWait = *batchWait
	if *replicated {
		stop, err := env.UseReplicatedSet(ctx)
		if err != nil {
			return err
		}
		defer stop() // after cleanup's env.Close, which drops the databases
	}
	rows, err := bench.Baseline(ctx, env, m, counts, *sf.rounds)
	if err != nil {
		return err
	}
	bench.PrintBaseline(e.stdout, *sf.storage, rows)
	return writeJSON(*sf.jsonOut, rows, e.stdout)
}

func benchDirectory(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	sf := addScenarioFlags(fs)
	if err := noArgs(e, fs, args); err != nil {
		return err
	}
	env, counts, cleanup, err := sf.start()
	if err != nil {
		return err
	}
	defer cleanup()
	costs, err := bench.Directory(ctx, env, sf.measurement(), counts, *sf.rounds)
	if err != nil {
		return err
	}
	bench.PrintDirectory(e.stdout, *sf.storage, costs)
	return writeJSON(*sf.jsonOut, costs, e.stdout)
}

func benchScaling(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	units := fs.String("units", "1,2,4,8", "unit counts, comma-separated")
	clients := fs.Int("clients", 64, "concurrent clients")
	duration := fs.Duration("duration", 10*time.Second, "length of each measurement")
	dir := fs.String("dir", "", "keep data and logs here (default: a temporary directory)")
	jsonOut := fs.String("json", "", "also write the figures as JSON to this file")
	if err := noArgs(e, fs, args); err != nil {
		return err
	}
	counts, err := intList(*units)
	if err != nil {
		return err
	}
	env, cleanup, err := scenarioEnv("sqlite", *dir)
	if err != nil {
		return err
	}
	defer cleanup()
	points, err := bench.Scaling(ctx, env, counts, *clients, *duration, os.Stderr)
	if err != nil {
		return err
	}
	bench.PrintScaling(e.stdout, points)
	return writeJSON(*jsonOut, points, e.stdout)
}

func benchCool(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	cfg := bench.DefaultCoolConfig()
	storage := fs.String("storage", "sqlite", "sqlite or mysql (MariaDB at $TRADEUNIT_BENCH_MYSQL, default mysql:root@tcp(127.0.0.1:3306)/)")
	fs.IntVar(&cfg.Orders, "orders", cfg.Orders, "orders written into the unit before the move")
	fs.IntVar(&cfg.Hot, "hot", cfg.Hot, "of them, how many the clients pay, refund and read during the move")
	fs.IntVar(&cfg.Clients, "clients", cfg.Clients, "concurrent clients through the proxy")
	fs.IntVar(&cfg.Rounds, "rounds", cfg.Rounds, "rounds, each on a fresh cluster")
	fs.DurationVar(&cfg.Before, "before", cfg.Before, "load before the move: the latency baseline")
	dir := fs.String("dir", "", "keep data and logs here (default: a temporary directory)")
	jsonOut := fs.String("json", "", "also write the figures as JSON to this file")
	if err := noArgs(e, fs, args); err != nil {
		return err
	}
	if cfg.Orders < 1 || cfg.Hot < 1 || cfg.Clients < 1 || cfg.Rounds < 1 {
		return usageErrorf("--orders, --hot, --clients and --rounds must be at least 1")
	}
	env, cleanup, err := scenarioEnv(*storage, *dir)
	if err != nil {
		return err
	}
	defer cleanup()
	res, err := bench.Cool(ctx, env, cfg, os.Stderr)
	if len(res.Rounds) > 0 {
		bench.PrintCool(e.stdout, res)
	}
	if err != nil {
		return err
	}
	return writeJSON(*jsonOut, res, e.stdout)
}

// benchSmoke starts a small local cluster and runs a mixed load against it,
// failing if any acknowledged order is lost: what CI runs.
func benchSmoke(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	lf := addLoadFlags(fs)
	fs.Set("mix", "create=4,pay=3,query=6,refund=1,close=1")
	if err := noArgs(e, fs, args); err != nil {
		return err
	}
	bin, err := os.Executable()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "tradeunit-smoke-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg := cluster.DefaultConfig(filepath.Join(dir, "data"), bin)
	cfg.Units, cfg.Logger = 3, slog.New(slog.NewTextHandler(io.Discard, nil))
	cl, err := cluster.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer cl.Close()
	t, err := bench.OpenTarget(ctx, cl.ProxyURL, cl.Credentials.Merchants[0].APIKey, "", 0, *lf.clients)
	if err != nil {
		return err
	}
	defer t.Release()
	load, err := lf.config(t)
	if err != nil {
		return err
	}
	return runAndReport(ctx, load, *lf.jsonOut, e.stdout)
}

func intList(s string) ([]int, error) {
	var out []int
	for _, p := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q: want positive integers separated by commas", s)
		}
		out = append(out, n)
	}
	return out, nil
}
