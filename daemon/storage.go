package daemon

import (
	"context"
	"sync"

	grpchealth "google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"tradeunit/routing"
	"tradeunit/store/replicated"
)

// WatchStorage follows one unit's or shard's storage (what pick returns
// of each topology) in the storage topology src, for replicated.Open.
func WatchStorage(ctx context.Context, src routing.TopologySource, pick func(*routing.Topology) (routing.Storage, bool)) <-chan replicated.Topology {
	out := make(chan replicated.Topology, 1)
	go func() {
		defer close(out)
		for t := range src.Watch(ctx) {
			top := replicated.Topology{Revision: t.Revision}
			if s, ok := pick(t); ok {
				top.Primary, top.Replicas = s.Primary, s.Replicas
			}
			select {
			case out <- top:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// HealthRelay passes a storage's verdict (can it take changes?) to a gRPC
// health service, which exists only once the server is built: NOT_SERVING
// moves creates and health probes elsewhere.
type HealthRelay struct {
	mu       sync.Mutex
	serving  bool
	services []string
	h        *grpchealth.Server
}

// NewHealthRelay returns a relay reporting serving, until told otherwise,
// for the overall health ("") and services.
func NewHealthRelay(serving bool, services ...string) *HealthRelay {
	return &HealthRelay{serving: serving, services: append([]string{""}, services...)}
}

// Set records the storage's verdict (a replicated.Deps.OnHealth).
func (r *HealthRelay) Set(serving bool, _ string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.serving = serving
	r.apply()
}

// Attach reports to h from now on.
func (r *HealthRelay) Attach(h *grpchealth.Server) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.h = h
	r.apply()
}

// apply sets the health of the services; r.mu is held. After the server's
// Shutdown, the health service ignores it.
func (r *HealthRelay) apply() {
	if r.h == nil {
		return
	}
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if r.serving {
		st = healthpb.HealthCheckResponse_SERVING
	}
	for _, s := range r.services {
		r.h.SetServingStatus(s, st)
	}
}
