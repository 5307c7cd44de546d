package rpc

import (
	"context"
	"path"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"tradeunit"
)

// ServerMetrics counts a logic service's RPCs: how many per method and
// outcome, and how long they took. Register it on the process's own
// registry and pass Interceptor to NewServer.
type ServerMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewServerMetrics returns the metrics, registered on reg.
func NewServerMetrics(reg prometheus.Registerer) *ServerMetrics {
	m := &ServerMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tradeunit_unit_rpc_requests_total",
			Help: "RPCs served by this logic service, by method and outcome code (OK, or the tradeunit error code).",
		}, []string{"method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tradeunit_unit_rpc_duration_seconds",
			Help:    "Time to serve an RPC, by method.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"method"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// Interceptor returns the server option that records every unary call.
func (m *ServerMetrics) Interceptor() grpc.ServerOption {
	return grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		method := path.Base(info.FullMethod)
		code := "OK"
		if err != nil {
			code = string(tradeunit.ErrorCode(fromStatus(method, err)))
		}
		m.requests.WithLabelValues(method, code).Inc()
		m.duration.WithLabelValues(method).Observe(time.Since(start).Seconds())
		return resp, err
	})
}
