package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"os"

	"tradeunit"
	"tradeunit/dsn"
	"tradeunit/routing"
)

// previous returns the routing table and storage topology a previous run
// left at spec, or nils if there are none (or they cannot be read: the
// cluster starts afresh). A table file of an older version, with each
// unit's storage inside it, is split into the two.
func previous(ctx context.Context, spec string, opts routing.Options) (*routing.Table, *routing.Topology, error) {
	if routing.IsEtcd(spec) {
		e, err := routing.OpenEtcd(ctx, spec, opts)
		if errors.Is(err, routing.ErrNoTable) {
			return nil, nil, nil
		}
		if err != nil {
			return nil, nil, err
		}
		defer e.Close()
		top, err := routing.OpenTopologyEtcd(ctx, spec, opts)
		if err != nil {
			return e.Current(), nil, nil
		}
		defer top.Close()
		return e.Current(), top.Current(), nil
	}
	data, err := os.ReadFile(spec)
	if err != nil {
		return nil, nil, nil
	}
	old, err := routing.Parse(data)
	if err != nil {
		t, top := splitLegacy(data)
		return t, top, nil
	}
	var top *routing.Topology
	if data, err := os.ReadFile(routing.TopologyPath(spec)); err == nil {
		top, _ = routing.ParseTopology(data)
	}
	return old, top, nil
}

// splitLegacy reads a table file of a version that kept each unit's
// storage in the table, as the table without it and the storage topology;
// nils if it is not one.
func splitLegacy(data []byte) (*routing.Table, *routing.Topology) {
	var doc map[string]json.RawMessage
	if json.Unmarshal(data, &doc) != nil {
		return nil, nil
	}
	var units []map[string]json.RawMessage
	if json.Unmarshal(doc["units"], &units) != nil {
		return nil, nil
	}
	top := &routing.Topology{Revision: 1}
	for _, u := range units {
		var entry struct {
			Unit    uint32 `json:"unit"`
			Storage struct {
				Primary string `json:"primary"`
			} `json:"storage"`
		}
		raw, _ := json.Marshal(u)
		if json.Unmarshal(raw, &entry) != nil {
			return nil, nil
		}
		delete(u, "storage")
		d, err := dsn.Parse(entry.Storage.Primary)
		if err == nil {
			top.Units = append(top.Units, routing.UnitStorage{Unit: tradeunit.UnitID(entry.Unit), Storage: routing.Storage{Primary: d}})
		}
	}
	doc["units"], _ = json.Marshal(units)
	rewritten, _ := json.Marshal(doc)
	t, err := routing.Parse(rewritten)
	if err != nil {
		return nil, nil
	}
	top.Normalize()
	if top.Validate() != nil {
		top = nil
	}
	return t, top
}

// keepPolicy carries the operators' policy over from the routing table a
// previous run left, so that restarting a local cluster keeps its
// blacklist, merchant partitions, canary settings and unit labels; the
// units' addresses are new.
func keepPolicy(old, t *routing.Table) {
	if old == nil {
		return
	}
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
