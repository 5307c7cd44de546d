package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"tradeunit"
	"tradeunit/routing"
)

// previousTable returns the routing table a previous run left at spec, or
// nil if there is none (or it cannot be parsed: the cluster starts afresh).
func previousTable(ctx context.Context, spec string) (*routing.Table, error) {
	if strings.HasPrefix(spec, "etcd://") {
		e, err := routing.OpenEtcd(ctx, spec, routing.EtcdOptions{})
		if errors.Is(err, routing.ErrNoTable) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		defer e.Close()
		return e.Current(), nil
	}
	data, err := os.ReadFile(spec)
	if err != nil {
		return nil, nil
	}
	old, err := routing.Parse(data)
	if err != nil {
		return nil, nil
	}
	return old, nil
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

// storageOf returns the storage a previous run gave unit id, "" if none.
func storageOf(old *routing.Table, id tradeunit.UnitID) string {
	if old == nil {
		return ""
	}
	if u, ok := old.Unit(id); ok {
		return u.Storage.Primary
	}
	return ""
}

// publishTable writes the cluster's first table: the file is replaced; in
// etcd it is created, or replaces the previous run's as the next revision.
func publishTable(ctx context.Context, spec string, hadTable bool, t *routing.Table) error {
	change := routing.Change{Who: "cluster", What: fmt.Sprintf("local cluster started with %d units", len(t.Units))}
	if !strings.HasPrefix(spec, "etcd://") {
		return routing.WriteFile(spec, t)
	}
	if !hadTable {
		return routing.InitEtcd(ctx, spec, t, change)
	}
	e, err := routing.OpenEtcd(ctx, spec, routing.EtcdOptions{})
	if err != nil {
		return err
	}
	defer e.Close()
	_, err = e.Update(ctx, change, func(cur *routing.Table) error {
		rev := cur.Revision
		*cur = *t.Clone()
		cur.Revision = rev
		return nil
	})
	return err
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
				if err := c.startRegistered(ctx, u); err != nil && ctx.Err() == nil {
					c.cfg.Logger.Error("start logic services of an added unit", "unit", u.ID, "err", err)
				}
			}
		}
	}()
}

func (c *Cluster) startRegistered(ctx context.Context, entry routing.Unit) error {
	started, err := c.startUnit(ctx, entry.ID, entry.Storage.Primary)
	if err != nil {
		return err
	}
	uctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = c.routes.Update(uctx, routing.Change{Who: "cluster", What: fmt.Sprintf("unit %d logic services started", entry.ID)},
		func(t *routing.Table) error {
			for i := range t.Units {
				if u := &t.Units[i]; u.ID == entry.ID {
					u.LogicAddrs, u.Available = started.LogicAddrs, true
				}
			}
			return nil
		})
	if err == nil {
		c.cfg.Logger.Info("added unit serving", "unit", entry.ID, "addrs", started.LogicAddrs)
	}
	return err
}
