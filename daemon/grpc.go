package daemon

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	grpchealth "google.golang.org/grpc/health"
	"tradeunit/pki"
)

// GRPCConfig is how a gRPC service program (a unit's logic service, a
// directory shard's service) is reached and stopped, and where its storage
// passwords come from. Start from DefaultGRPCConfig.
type GRPCConfig struct {
	// Secrets is the secrets file the storage passwords come from (with
	// the TRADEUNIT_PASSWORD_* environment variables); "" for the
	// environment only.
	Secrets         string
	Listen          string // gRPC listen address
	AddrFile        string // write the bound address here once serving (for port 0)
	Metrics         string // serve GET /metrics here; "" for none
	MetricsAddrFile string
	// ShutdownTimeout bounds the graceful stop: calls in flight get this
	// long to finish, then the server stops hard.
	ShutdownTimeout time.Duration
}

// DefaultGRPCConfig listens on listen and gives calls in flight 10 s at
// shutdown.
func DefaultGRPCConfig(listen string) GRPCConfig {
	return GRPCConfig{Listen: listen, ShutdownTimeout: 10 * time.Second}
}

// Flags binds the configuration to flags of fs.
func (c *GRPCConfig) Flags(fs *flag.FlagSet) {
	fs.StringVar(&c.Secrets, "secrets", c.Secrets, "secrets file with the storage passwords (mode 600); the TRADEUNIT_PASSWORD_* environment variables are read too")
	fs.StringVar(&c.Listen, "listen", c.Listen, "gRPC listen address")
	fs.StringVar(&c.AddrFile, "addr-file", c.AddrFile, "write the bound address to this file once serving (for port 0)")
	fs.StringVar(&c.Metrics, "metrics", c.Metrics, "serve Prometheus metrics (GET /metrics) on this address; off if empty")
	fs.StringVar(&c.MetricsAddrFile, "metrics-addr-file", c.MetricsAddrFile, "write the bound metrics address to this file (for port 0)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "time calls in flight get to finish at shutdown")
}

// Validate reports a bad setting; it changes nothing.
func (c GRPCConfig) Validate() error {
	if c.ShutdownTimeout <= 0 {
		return errors.New("shutdown timeout must be positive")
	}
	return nil
}

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
// whose API is gRPC; "" serves none (nil, nil). With keys it is mutual TLS
// (ServeInternal): metrics and profiles tell an attacker too much.
func ServeMetrics(addr, addrFile string, reg *prometheus.Registry, keys *pki.Keys, log *slog.Logger) (*HTTPServer, error) {
	if addr == "" {
		return nil, nil
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", MetricsHandler(reg))
	// Profiles on the operators' port, not the API's: go tool pprof
	// http://ADDR/debug/pprof/profile?seconds=10 (bench/README.md; the
	// write timeout of 60 s bounds a profile's length).
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return ServeInternal(addr, addrFile, mux, DefaultHTTPConfig(), keys, log)
}
