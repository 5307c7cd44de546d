package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	grpchealth "google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"tradeunit"
	"tradeunit/routing"
	"tradeunit/rpc"
	"tradeunit/store/replicated"
	"tradeunit/store/sqlstore"
	"tradeunit/unit"
)

var unitCmd = &command{
	name:  "unit",
	usage: "--unit N (--db DSN | --routes SPEC) [--listen ADDR] [--metrics ADDR] [--probe-retention 10m] [--replica-max-lag 1s]",
	short: "run a logic-service replica of unit N over its storage: one DSN, or the primary and replicas the routing table names",
}

func init() { unitCmd.run = runUnit }

func runUnit(ctx context.Context, args []string, _ io.Writer) error {
	fs := newFlags(unitCmd)
	id := fs.Uint("unit", 0, "unit number (1..99999)")
	dsn := fs.String("db", "", "storage DSN: sqlite:PATH or mysql:USER[:PASS]@tcp(HOST:PORT)/DB")
	routes := fs.String("routes", "", "instead of --db: follow the unit's storage in this routing table (a file, or etcd://HOST:PORT/PREFIX): "+
		"changes and real-time reads on its primary, eventual reads on its replicas; a failover is followed")
	maxLag := fs.Duration("replica-max-lag", time.Second, "with --routes: an eventual read uses a replica only while its measured lag is under this")
	storageCheck := fs.Duration("storage-check", 500*time.Millisecond, "with --routes: how often the primary's health (read-only, semi-sync acknowledgement) is checked")
	heartbeat := fs.Duration("heartbeat", 100*time.Millisecond, "with --routes: how often the primary's heartbeat is written, for replica lag")
	maxAckWait := fs.Duration("max-ack-wait", time.Second, "with --routes: a commit waiting this long for a replica's acknowledgement makes the unit refuse changes")
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
	if (*dsn == "") == (*routes == "") {
		return fmt.Errorf("give one of --db and --routes")
	}
	if *id > uint(tradeunit.MaxUnitID) {
		return fmt.Errorf("--unit %d out of range 1..%d", *id, tradeunit.MaxUnitID)
	}
	cfg := unit.Config{Unit: tradeunit.UnitID(*id), SequenceBlock: *block}
	relay := &healthRelay{serving: true}
	var (
		svc     *unit.Service
		janitor unit.ProbeDeleter
	)
	if *dsn != "" {
		store, err := sqlstore.Open(ctx, *dsn)
		if err != nil {
			return err
		}
		defer store.Close()
		if svc, err = unit.New(cfg, store); err != nil {
			return err
		}
		janitor = store
	} else {
		table, err := routing.Open(ctx, *routes, routing.FileOptions{Logger: log})
		if err != nil {
			return err
		}
		defer table.Close()
		// Not serving until the primary is open, writable and acknowledged.
		relay.serving = false
		storage, err := replicated.Open(replicated.Config{Unit: cfg.Unit, Routes: table, MaxLag: *maxLag,
			CheckEvery: *storageCheck, Heartbeat: *heartbeat, MaxAckWait: *maxAckWait, OnHealth: relay.set, Logger: log})
		if err != nil {
			return err
		}
		defer storage.Close()
		if svc, err = unit.NewWithStorage(cfg, storage); err != nil {
			return err
		}
		janitor = storage
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
	go unit.RunJanitor(janitorCtx, janitor, unit.JanitorConfig{Retention: *retention, Logger: log,
		Deleted: func(n int) { probesDeleted.Add(float64(n)) }})
	server, health := rpc.NewServer(svc, rpcMetrics.Interceptor())
	relay.attach(health)
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
	// Report NOT_SERVING to gRPC health checks, then finish the calls in
	// flight: every acknowledged change is committed. New calls are refused
	// at once, and the proxy moves them to the unit's other replicas.
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

// healthRelay passes the storage's verdict (can the unit take changes?) to
// the gRPC health service, which exists only once the server is built:
// NOT_SERVING moves creates and health probes to other units.
type healthRelay struct {
	mu      sync.Mutex
	serving bool
	h       *grpchealth.Server
}

func (r *healthRelay) set(serving bool, _ string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.serving = serving
	r.apply()
}

func (r *healthRelay) attach(h *grpchealth.Server) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.h = h
	r.apply()
}

// apply sets the health of the unit's service; r.mu is held. After the
// server's Shutdown, the health service ignores it.
func (r *healthRelay) apply() {
	if r.h == nil {
		return
	}
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if r.serving {
		st = healthpb.HealthCheckResponse_SERVING
	}
	r.h.SetServingStatus("", st)
	r.h.SetServingStatus(rpc.ServiceName, st)
}
