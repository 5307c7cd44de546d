package main

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"tradeunit/routing"
)

// newRegistry returns a process's metrics registry, with the Go runtime and
// process collectors. Each process component registers on its own
// registry: no global state.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// serveMetrics serves GET /metrics of reg on addr and returns the bound
// address and a function that stops it.
func serveMetrics(addr string, reg *prometheus.Registry) (string, func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}, nil
}

// registerRoutesMetrics exports what a process knows of its routing table:
// the revision it serves, and whether that table may be stale because etcd
// could not be reached (it keeps serving its last good copy meanwhile).
func registerRoutesMetrics(reg *prometheus.Registry, routes routing.Source) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "tradeunit_routing_table_revision", Help: "Revision of the routing table this process serves.",
	}, func() float64 { return float64(routes.Current().Revision) }))
	if s, ok := routes.(interface{ Stale() bool }); ok {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tradeunit_routing_table_stale",
			Help: "1 while etcd cannot be reached and the last good routing table is served.",
		}, func() float64 {
			if s.Stale() {
				return 1
			}
			return 0
		}))
	}
}
