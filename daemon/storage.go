package daemon

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"sync"
	"tradeunit/pki"

	grpchealth "google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"tradeunit"
	"tradeunit/dsn"
	"tradeunit/routing"
	"tradeunit/store/replicated"
	"tradeunit/store/sqlstore"
	"tradeunit/unit"
)

// WatchStorage follows one unit's or shard's storage (what pick returns
// of each topology: its servers, and whether they are a unit's cold copy)
// in the storage topology src, for replicated.Open.
func WatchStorage(ctx context.Context, src routing.TopologySource, pick func(*routing.Topology) (s routing.Storage, cold, ok bool)) <-chan replicated.Topology {
	out := make(chan replicated.Topology, 1)
	go func() {
		defer close(out)
		for t := range src.Watch(ctx) {
			top := replicated.Topology{Revision: t.Revision}
			if s, cold, ok := pick(t); ok {
				top.Primary, top.Replicas, top.Cold = s.Primary, s.Replicas, cold
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

// UnitStorage is a unit's storage as a program opens it: one DSN, or the
// primary and replicas the storage topology of a routing table names,
// followed across failovers. Exactly one of DB and Routes is set.
type UnitStorage struct {
	DB      dsn.DSN
	Routes  string
	Storage replicated.Config
}

// Flags binds the configuration to flags of fs.
func (u *UnitStorage) Flags(fs *flag.FlagSet) {
	fs.TextVar(&u.DB, "db", u.DB, "storage DSN: sqlite:PATH or mysql:USER@tcp(HOST:PORT)/DB (no password: see --secrets)")
	fs.StringVar(&u.Routes, "routes", u.Routes, "instead of --db: follow the unit's storage in the storage topology of this routing table "+
		"(a file, or etcd://HOST:PORT/PREFIX): changes and real-time reads on its primary, eventual reads on its replicas; a failover is followed")
	st := &u.Storage
	fs.DurationVar(&st.MaxLag, "replica-max-lag", st.MaxLag, "with --routes: an eventual read uses a replica only while its measured lag is under this")
	fs.DurationVar(&st.CheckEvery, "storage-check", st.CheckEvery, "with --routes: how often the primary's health (read-only, semi-sync acknowledgement) is checked")
	fs.DurationVar(&st.Heartbeat, "heartbeat", st.Heartbeat, "with --routes: how often the primary's heartbeat is written, for replica lag")
	fs.DurationVar(&st.MaxAckWait, "max-ack-wait", st.MaxAckWait, "with --routes: a commit waiting this long for a replica's acknowledgement makes the unit refuse changes")
}

// Validate reports a bad setting; it changes nothing.
func (u UnitStorage) Validate() error {
	if (u.DB == dsn.DSN{}) == (u.Routes == "") {
		return errors.New("give one of --db and --routes")
	}
	return u.Storage.Validate()
}

// OpenedUnit is an opened unit storage: the Storage, what deletes its
// health probes' orders, and what closes it.
type OpenedUnit struct {
	tradeunit.Storage
	unit.ProbeDeleter
	Close func() error
	// WaitOpen waits until the storage has tried its primary once (see
	// replicated.Storage.WaitOpen); at once for one DSN, opened already.
	WaitOpen func(context.Context) error
}

// Open opens unit id's storage; with Routes it follows the topology (with
// keys, nil for none, reaching etcd) until bg ends, reporting the
// primary's health to onHealth (nil: not reported).
func (u UnitStorage) Open(ctx, bg context.Context, id tradeunit.UnitID, passwords dsn.Passwords, keys *pki.Keys, log *slog.Logger,
	onHealth func(bool, string)) (OpenedUnit, error) {
	if u.Routes == "" {
		store, err := sqlstore.Open(ctx, u.DB, passwords)
		if err != nil {
			return OpenedUnit{}, err
		}
		return OpenedUnit{Storage: tradeunit.FixedStorage(store), ProbeDeleter: store, Close: store.Close,
			WaitOpen: func(context.Context) error { return nil }}, nil
	}
	if onHealth == nil {
		onHealth = func(bool, string) {}
	}
	top, err := routing.OpenTopology(ctx, u.Routes, RoutingOptions(keys, log))
	if err != nil {
		return OpenedUnit{}, err
	}
	watch := WatchStorage(bg, top, func(t *routing.Topology) (routing.Storage, bool, bool) {
		unit, ok := t.Unit(id)
		if !ok {
			return routing.Storage{}, false, false
		}
		return unit.Storage, unit.Cold, true
	})
	storage, err := replicated.OpenUnit(u.Storage, id, replicated.Deps{Topology: watch,
		Passwords: passwords, OnHealth: onHealth, Logger: log})
	if err != nil {
		top.Close()
		return OpenedUnit{}, err
	}
	return OpenedUnit{Storage: storage, ProbeDeleter: storage, WaitOpen: storage.WaitOpen,
		Close: func() error { return errors.Join(storage.Close(), top.Close()) }}, nil
}
