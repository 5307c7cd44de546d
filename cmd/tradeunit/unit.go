package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"tradeunit"
	"tradeunit/rpc"
	"tradeunit/store/sqlstore"
	"tradeunit/unit"
)

var unitCmd = &command{
	name:  "unit",
	usage: "--unit N --db DSN [--listen ADDR] [--metrics ADDR] [--probe-retention 10m]",
	short: "run a logic-service replica of unit N over its storage (sqlite:PATH or mysql:USER@tcp(HOST:PORT)/DB)",
}

func init() { unitCmd.run = runUnit }

func runUnit(ctx context.Context, args []string, _ io.Writer) error {
	fs := newFlags(unitCmd)
	id := fs.Uint("unit", 0, "unit number (1..99999)")
	dsn := fs.String("db", "", "storage DSN: sqlite:PATH or mysql:USER[:PASS]@tcp(HOST:PORT)/DB")
	listen := fs.String("listen", "127.0.0.1:9101", "gRPC listen address")
	addrFile := fs.String("addr-file", "", "write the bound address to this file once serving (for port 0)")
	block := fs.Int64("sequence-block", unit.DefaultSequenceBlock, "sequence numbers reserved per storage round trip")
	metricsAddr := fs.String("metrics", "", "serve Prometheus metrics (GET /metrics) on this address; off if empty")
	metricsAddrFile := fs.String("metrics-addr-file", "", "write the bound metrics address to this file (for port 0)")
	retention := fs.Duration("probe-retention", 10*time.Minute, "delete the health checker's probe orders older than this")
	logger := logLevelFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := logger()
	if *dsn == "" {
		return fmt.Errorf("--db is required")
	}
	if *id > uint(tradeunit.MaxUnitID) {
		return fmt.Errorf("--unit %d out of range 1..%d", *id, tradeunit.MaxUnitID)
	}
	store, err := sqlstore.Open(ctx, *dsn)
	if err != nil {
		return err
	}
	defer store.Close()
	svc, err := unit.New(unit.Config{Unit: tradeunit.UnitID(*id), SequenceBlock: *block}, store)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	reg := newRegistry()
	rpcMetrics := rpc.NewServerMetrics(reg)
	probesDeleted := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tradeunit_unit_probe_orders_deleted_total", Help: "Probe orders of the health checker deleted after their retention.",
	})
	reg.MustRegister(probesDeleted)
	if *metricsAddr != "" {
		bound, stop, err := serveMetrics(*metricsAddr, reg)
		if err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		defer stop()
		if *metricsAddrFile != "" {
			if err := writeAddrFile(*metricsAddrFile, bound); err != nil {
				return err
			}
		}
		log.Info("metrics serving", "addr", bound)
	}
	janitorCtx, stopJanitor := context.WithCancel(ctx)
	defer stopJanitor()
	go unit.RunJanitor(janitorCtx, store, unit.JanitorConfig{Retention: *retention, Logger: log,
		Deleted: func(n int) { probesDeleted.Add(float64(n)) }})
	server, health := rpc.NewServer(svc, rpcMetrics.Interceptor())
	errc := make(chan error, 1)
	go func() { errc <- server.Serve(ln) }()
	if *addrFile != "" {
		if err := writeAddrFile(*addrFile, ln.Addr().String()); err != nil {
			server.Stop()
			return err
		}
	}
	log.Info("unit serving", "unit", *id, "addr", ln.Addr().String())

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// Report NOT_SERVING first so health checks move traffic away, then
	// finish the calls in flight; every acknowledged change is committed.
	health.Shutdown()
	stopped := make(chan struct{})
	go func() { server.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		server.Stop()
	}
	log.Info("unit stopped", "unit", *id)
	return nil
}

// writeAddrFile writes addr and a newline atomically, so a reader never sees
// half an address.
func writeAddrFile(path, addr string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".addr-*")
	if err != nil {
		return err
	}
	if _, err := tmp.WriteString(addr + "\n"); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
