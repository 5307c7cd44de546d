package cluster

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"tradeunit"
	"tradeunit/health"
	"tradeunit/routing"
	"tradeunit/rpc"
)

// startUnit starts the replicas of unit id over dsn (the configured storage
// if empty) and returns its routing entry.
func (c *Cluster) startUnit(ctx context.Context, id tradeunit.UnitID, dsn string) (routing.Unit, error) {
	cfg := c.cfg
	if dsn == "" {
		dsn = cfg.Storage(id)
	}
	u := &Unit{ID: id, DSN: dsn}
	c.mu.Lock()
	c.Units = append(c.Units, u)
	c.mu.Unlock()
	for r := 1; r <= cfg.Replicas; r++ {
		rep := NewReplicaWith(cfg.Binary, cfg.Dir, fmt.Sprintf("unit-%d-r%d", id, r), id, u.DSN, ReplicaOptions{
			SequenceBlock: cfg.SequenceBlock, ProbeRetention: cfg.ProbeRetention, Metrics: cfg.UnitMetrics,
		})
		if err := rep.Start(ctx); err != nil {
			return routing.Unit{}, err
		}
		u.Replicas = append(u.Replicas, rep)
	}
	return routing.Unit{
		ID: id, Partition: routing.DefaultPartition, LogicAddrs: u.Addrs(),
		Storage: routing.Storage{Primary: u.DSN}, Available: true, Temperature: routing.Hot, AcceptNew: true,
	}, nil
}

// AddUnit starts a new, empty unit (the next unit number) and adds it to the
// routing table, after edit (if set) has changed its entry. Proxies and the
// checker see it within a reload of the table; it takes new orders at once,
// and nothing moves.
func (c *Cluster) AddUnit(ctx context.Context, edit func(*routing.Unit)) (*Unit, error) {
	var top tradeunit.UnitID
	for _, u := range c.Units {
		top = max(top, u.ID)
	}
	entry, err := c.startUnit(ctx, top+1, "")
	if err != nil {
		return nil, err
	}
	if edit != nil {
		edit(&entry)
	}
	if _, err := c.routes.Update(ctx, routing.Change{Who: "cluster", What: fmt.Sprintf("unit add %d", entry.ID)}, func(t *routing.Table) error {
		t.Units = append(t.Units, entry)
		return nil
	}); err != nil {
		return nil, err
	}
	return c.Units[len(c.Units)-1], nil
}

// Routes returns the routing table the cluster's proxy uses now.
func (c *Cluster) Routes() *routing.Table { return c.routes.Current() }

// startHealth starts a health checker over the cluster's routing table and
// serves its API.
func (c *Cluster) startHealth(hc HealthConfig) error {
	reg := prometheus.NewRegistry()
	checker, err := health.New(health.Config{
		Routes: c.routes, Interval: hc.Interval, ProbeTimeout: hc.ProbeTimeout, Policy: hc.Policy,
		Dialer: rpc.NewPool(hc.DialOptions...), Registry: reg, Logger: c.cfg.Logger,
	})
	if err != nil {
		return err
	}
	if hc.Addr == "" {
		hc.Addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", hc.Addr)
	if err != nil {
		return fmt.Errorf("health checker listen: %w", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	c.health, c.healthStop, c.healthDone = checker, stop, make(chan struct{})
	go func() { checker.Run(ctx); close(c.healthDone) }()
	c.healthServer = &http.Server{Handler: checker.Handler(reg), ReadHeaderTimeout: 10 * time.Second}
	go c.healthServer.Serve(ln)
	c.HealthURL = "http://" + ln.Addr().String()
	return nil
}

// Health returns the cluster's health checker, or nil.
func (c *Cluster) Health() *health.Checker { return c.health }

// StopHealth stops the health checker, as if its host failed: its API stops
// answering and proxies fall back on their own view. It is safe to call
// without a checker, and more than once.
func (c *Cluster) StopHealth() {
	if c.healthServer == nil {
		return
	}
	c.healthServer.Close()
	c.healthStop()
	<-c.healthDone
	c.healthServer = nil
}

// keepPolicy carries the operators' policy over from the routing table a
// previous run left, so that restarting a local cluster keeps its
// blacklist, merchant partitions, canary settings and unit labels; the
// units' addresses are new.
func keepPolicy(old, t *routing.Table) {
	if old == nil {
		return
	}
	t.Revision = old.Revision + 1
	for i := range t.Units {
		if prev, ok := old.Unit(t.Units[i].ID); ok {
			t.Units[i].Partition, t.Units[i].Labels, t.Units[i].Weight = prev.Partition, prev.Labels, prev.Weight
			t.Units[i].AcceptNew, t.Units[i].Temperature = prev.AcceptNew, prev.Temperature
		}
	}
	t.Partitions, t.Merchants = old.Partitions, old.Merchants
	for _, e := range old.Blacklist {
		if _, ok := t.Unit(e.Unit); ok {
			t.Blacklist = append(t.Blacklist, e)
		}
	}
	if t.Validate() != nil { // a policy naming a partition that is gone
		t.Partitions, t.Merchants, t.Blacklist = nil, nil, nil
	}
}
