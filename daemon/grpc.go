package daemon

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	grpchealth "google.golang.org/grpc/health"
)

// GRPCServer is a gRPC server a program runs (a unit's or a directory
// shard's service), with its health service.
type GRPCServer struct {
	Server   *grpc.Server
	Health   *grpchealth.Server
	Addr     string // the bound address
	shutdown time.Duration
	served   chan error
}

// ServeGRPC serves s on addr (writing the bound address to addrFile if
// set) until Close; Close gives calls in flight shutdown to finish.
func ServeGRPC(addr, addrFile string, s *grpc.Server, h *grpchealth.Server, shutdown time.Duration) (*GRPCServer, error) {
	ln, err := Listen(addr, addrFile)
	if err != nil {
		return nil, err
	}
	g := &GRPCServer{Server: s, Health: h, Addr: ln.Addr().String(), shutdown: shutdown, served: make(chan error, 1)}
	go func() { g.served <- s.Serve(ln) }()
	return g, nil
}

// Failed receives the error that stopped the server, if it stops by itself.
func (g *GRPCServer) Failed() <-chan error { return g.served }

// Close reports NOT_SERVING to health checks, then finishes the calls in
// flight: every acknowledged change is committed. New calls are refused at
// once, and callers move them to other replicas. After the shutdown
// timeout the server stops hard.
func (g *GRPCServer) Close() {
	g.Health.Shutdown()
	stopped := make(chan struct{})
	go func() { g.Server.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(g.shutdown):
		g.Server.Stop()
	}
}

// Wait blocks until ctx ends (nil) or failed delivers a server's error:
// how a program's Main waits for a signal or its server's failure.
func Wait(ctx context.Context, failed <-chan error) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-failed:
		return err
	}
}

// ServeMetrics serves reg's metrics (GET /metrics) on addr, for a program
// whose API is gRPC; "" serves none (nil, nil).
func ServeMetrics(addr, addrFile string, reg *prometheus.Registry, log *slog.Logger) (*HTTPServer, error) {
	if addr == "" {
		return nil, nil
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", MetricsHandler(reg))
	return ServeHTTP(addr, addrFile, mux, DefaultHTTPConfig(), log)
}
