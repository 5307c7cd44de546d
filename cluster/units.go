package cluster

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"tradeunit"
	"tradeunit/dsn"
	"tradeunit/pki"
	"tradeunit/routing"
)

// startParts starts every unit the cluster has (units 1..Units and every
// unit a previous run's table knows, those an operator added included, on
// the storage it gave them) and every directory shard, and publishes the
// storage topology, the routing table of the units, then the table with
// the directory, with the operators' policy kept.
func (c *Cluster) startParts(ctx context.Context, spec string) error {
	oldTable, oldTopology, err := previous(ctx, spec, c.routingOptions())
	if err != nil {
		return err
	}
	table, topology := &routing.Table{Revision: 1}, &routing.Topology{Revision: 1}
	ids := unitsToStart(c.cfg.Units, oldTable)
	for _, id := range ids {
		st := c.storage(id)
		if oldTopology != nil {
			if u, ok := oldTopology.Unit(id); ok {
				st = u.Storage
			}
		}
		topology.Set(id, st)
	}
	shards := shardsToStart(c.cfg.Shards, oldTable)
	for _, id := range shards {
		st := c.shardStorage(id)
		if oldTopology != nil {
			if s, ok := oldTopology.Shard(id); ok {
				st = s.Storage
			}
		}
		topology.SetShard(id, st)
	}
	change := c.change(fmt.Sprintf("local cluster started with %d units and %d directory shards", len(ids), len(shards)))
	opts := c.routingOptions()
	// The storage mapping first (services that follow it read it as they
	// start), then the traffic.
	if _, err := routing.ReplaceTopology(ctx, spec, topology, change, opts); err != nil {
		return err
	}
	for _, id := range ids {
		st, _ := topology.Unit(id)
		u, err := c.startUnit(ctx, id, spec, st.Storage)
		if err != nil {
			return err
		}
		table.Units = append(table.Units, routing.Unit{ID: id, Partition: routing.DefaultPartition, LogicAddrs: u.Addrs(),
			Available: true, Temperature: routing.Hot, AcceptNew: true})
	}
	keepPolicy(oldTable, table)
	if c.cfg.Routes != nil {
		c.cfg.Routes(table)
	}
	// The shards' reconcilers follow the table: it must exist first.
	if _, err = routing.ReplaceTable(ctx, spec, table, change, opts); err != nil {
		return err
	}
	if table.Directory, err = c.startShards(ctx, spec, shards, topology, oldTable); err != nil {
		return err
	}
	if _, err = routing.ReplaceTable(ctx, spec, table, change, opts); err != nil {
		return err
	}
	return WaitHolding(ctx, table.Directory, c.adminDial()...)
}

// startUnit starts the replicas of unit id over st, following its storage
// in the storage topology at spec: across a failover, and to its cold copy.
func (c *Cluster) startUnit(ctx context.Context, id tradeunit.UnitID, spec string, st routing.Storage) (*Unit, error) {
	u := &Unit{ID: id, DSN: st.Primary}
	c.mu.Lock()
	c.Units = append(c.Units, u)
	c.mu.Unlock()
	cfg := c.cfg.Unit
	cfg.Service.Unit, cfg.DB, cfg.Routes = id, dsn.DSN{}, spec
	if c.cfg.UnitMetrics {
		cfg.Metrics = "127.0.0.1:0"
	}
	// One certificate per unit: its replicas are interchangeable.
	var err error
	if cfg.TLS, err = c.issue(pki.RoleUnit, fmt.Sprintf("unit-%d", id)); err != nil {
		return nil, err
	}
	for r := 1; r <= c.cfg.Replicas; r++ {
		rep := NewReplica(c.cfg.Binary, c.cfg.Dir, fmt.Sprintf("unit-%d-r%d", id, r), cfg)
		if err := rep.Start(ctx); err != nil {
			return nil, err
		}
		u.Replicas = append(u.Replicas, rep)
	}
	if err := c.startRelays(ctx, id, spec); err != nil {
		return nil, err
	}
	return u, nil
}

func (c *Cluster) storage(id tradeunit.UnitID) routing.Storage {
	if c.cfg.Storage != nil {
		return c.cfg.Storage(id)
	}
	return routing.Storage{Primary: dsn.MustParse("sqlite:" + filepath.Join(c.cfg.Dir, fmt.Sprintf("unit-%d.db", id)))}
}

// AddUnit starts a new, empty unit (the next unit number) and adds it to
// the storage topology, then the routing table, after edit (if set) has
// changed its entry. Proxies and the checker see it within a reload of the
// table; it takes new orders at once, and nothing moves.
func (c *Cluster) AddUnit(ctx context.Context, edit func(*routing.Unit)) (*Unit, error) {
	var top tradeunit.UnitID
	for _, u := range c.Units {
		top = max(top, u.ID)
	}
	st := c.storage(top + 1)
	change := c.change(fmt.Sprintf("unit add %d", top+1))
	if _, err := c.topology.Update(ctx, change, func(t *routing.Topology) error {
		t.Set(top+1, st)
		return nil
	}); err != nil {
		return nil, err
	}
	u, err := c.startUnit(ctx, top+1, c.RoutesPath, st)
	if err != nil {
		return nil, err
	}
	entry := routing.Unit{ID: u.ID, Partition: routing.DefaultPartition, LogicAddrs: u.Addrs(),
		Available: true, Temperature: routing.Hot, AcceptNew: true}
	if edit != nil {
		edit(&entry)
	}
	if _, err := c.routes.Update(ctx, change, func(t *routing.Table) error {
		t.Units = append(t.Units, entry)
		return nil
	}); err != nil {
		return nil, err
	}
	return u, nil
}

// manage starts the logic services of units that an operator registered
// without addresses (tradeunit admin unit add, no --logic): the local
// cluster plays the part of the deployment system, then makes the unit
// available. It runs until the cluster closes.
func (c *Cluster) manage() {
	ctx, stop := context.WithCancel(context.Background())
	c.stopManage, c.manageDone = stop, make(chan struct{})
	go func() {
		defer close(c.manageDone)
		for t := range c.routes.Watch(ctx) {
			for _, u := range t.Units {
				if len(u.LogicAddrs) > 0 || c.Unit(u.ID) != nil {
					continue
				}
				if err := c.startRegistered(ctx, u.ID); err != nil && ctx.Err() == nil {
					c.cfg.Logger.Error("start logic services of an added unit", "unit", u.ID, "err", err)
				}
			}
		}
	}()
}

func (c *Cluster) startRegistered(ctx context.Context, id tradeunit.UnitID) error {
	st, ok := c.topology.Current().Unit(id)
	if !ok {
		return fmt.Errorf("unit %d has no storage in the storage topology", id)
	}
	started, err := c.startUnit(ctx, id, c.RoutesPath, st.Storage)
	if err != nil {
		return err
	}
	uctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = c.routes.Update(uctx, c.change(fmt.Sprintf("unit %d logic services started", id)),
		func(t *routing.Table) error {
			for i := range t.Units {
				if u := &t.Units[i]; u.ID == id {
					u.LogicAddrs, u.Available = started.Addrs(), true
				}
			}
			return nil
		})
	if err == nil {
		c.cfg.Logger.Info("added unit serving", "unit", id, "addrs", started.Addrs())
	}
	return err
}

// unitsToStart is units 1..n and every unit of the previous table.
func unitsToStart(n int, old *routing.Table) []tradeunit.UnitID {
	var ids []tradeunit.UnitID
	for i := 1; i <= n; i++ {
		ids = append(ids, tradeunit.UnitID(i))
	}
	if old != nil {
		for _, u := range old.Units {
			if !slices.Contains(ids, u.ID) {
				ids = append(ids, u.ID)
			}
		}
	}
	slices.Sort(ids)
	return ids
}
