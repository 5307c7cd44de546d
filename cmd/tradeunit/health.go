package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"tradeunit/health"
	"tradeunit/routing"
	"tradeunit/rpc"
)

var healthCmd = &command{
	name:  "health",
	usage: "--routes FILE [--listen ADDR] [--interval 1s] [--max-eject-share 0.5]",
	short: "run the health checker: probe every unit with real orders, eject failing ones safely, serve GET /v1/units and /metrics",
}

func init() { healthCmd.run = runHealth }

func runHealth(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags(healthCmd)
	routesPath := fs.String("routes", "", "routing table: a file, or etcd://HOST:PORT/PREFIX")
	listen := fs.String("listen", "127.0.0.1:8081", "HTTP listen address of the API (GET /v1/units) and metrics")
	addrFile := fs.String("addr-file", "", "write the bound address to this file once serving (for port 0)")
	interval := fs.Duration("interval", time.Second, "time between two probes of a unit")
	probeTimeout := fs.Duration("probe-timeout", 0, "bound of each call of a probe (default: half the interval)")
	share := fs.Float64("max-eject-share", 0.5, "largest share of a partition's units ejected at once; beyond it the partition is in panic")
	failures := fs.Int("failures", 3, "consecutive failed probes that eject a unit")
	minRate := fs.Float64("min-success-rate", 0.8, "success rate over the window under which a unit is ejected")
	baseEjection := fs.Duration("base-ejection", 0, "back-off of a first ejection, doubled for each further one (default: 5 intervals)")
	logger := logLevelFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := logger()
	if *routesPath == "" {
		return errors.New("--routes is required")
	}
	routes, err := routing.Open(ctx, *routesPath, routing.FileOptions{Logger: log})
	if err != nil {
		return err
	}
	defer routes.Close()
	reg := newRegistry()
	checker, err := health.New(health.Config{
		Routes: routes, Dialer: rpc.NewPool(), Interval: *interval, ProbeTimeout: *probeTimeout, Registry: reg, Logger: log,
		Policy: health.Policy{MaxEjectShare: *share, FailuresToEject: *failures, MinSuccessRate: *minRate, BaseEjection: *baseEjection},
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan struct{})
	go func() { checker.Run(runCtx); close(done) }()
	server := &http.Server{Handler: checker.Handler(reg), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- server.Serve(ln) }()
	fmt.Fprintf(stdout, "health checker listening on http://%s (GET /v1/units, /metrics)\n", ln.Addr())
	if *addrFile != "" {
		if err := writeAddrFile(*addrFile, ln.Addr().String()); err != nil {
			server.Close()
			return err
		}
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// Long-polls end at once: proxies see the checker gone and fall back on
	// their own view.
	server.Close()
	stop()
	<-done
	return nil
}
