// Package admin holds the operator's changes to the routing table: add,
// drain and set units, map merchants to partitions, read the history. Every
// change validates before it writes, runs as one compare-and-swap on the
// table (routing.Editor), and is recorded with who made it. The CLI in
// cmd/tradeunit only parses flags and prints.
package admin

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"tradeunit"
	"tradeunit/dsn"
	"tradeunit/routing"
	"tradeunit/store/sqlstore"
)

// Admin changes one routing table and the storage topology beside it.
type Admin struct {
	Routes routing.Editor
	// Topology is the storage topology beside Routes; nil for the commands
	// that change only the routing table.
	Topology routing.TopologyEditor
	// Passwords resolves the passwords of the users the storage commands
	// connect as (the secrets file and environment); nil: none.
	Passwords dsn.Passwords
	// Dialer reaches the directory shards' services (admin directory
	// backfill); nil: those commands refuse. cmd/tradeunit gives an
	// rpc.Pool.
	Dialer tradeunit.LogicDialer
	// HTTP reaches internal HTTP endpoints (the checker's API), with the
	// operator's certificate; nil: a plain client.
	HTTP *http.Client
	// Who, Subject and Why are recorded with every change: the operator's
	// name and certificate subject (cmd/tradeunit takes both from the
	// operator's certificate), and the reason given.
	Who, Subject, Why string
	Now               func() time.Time // the clock; time.Now if nil
	// CheckStorage opens a new unit's storage, applying the schema, to
	// prove that the DSN answers before the unit is registered. Default:
	// sqlstore.Open with Passwords.
	CheckStorage func(ctx context.Context, d dsn.DSN) error
}

func (a *Admin) update(ctx context.Context, what string, fn func(*routing.Table) error) (*routing.Table, error) {
	return a.Routes.Update(ctx, a.change(what), fn)
}

// updateStorage changes the storage topology.
func (a *Admin) updateStorage(ctx context.Context, what string, fn func(*routing.Topology) error) (*routing.Topology, error) {
	if a.Topology == nil {
		return nil, errors.New("admin: no storage topology")
	}
	return a.Topology.Update(ctx, a.change(what), fn)
}

// entryOf returns entry ref's storage in the topology, and the topology
// it was read from.
func (a *Admin) entryOf(ref routing.StorageRef) (routing.Storage, *routing.Topology, error) {
	if a.Topology == nil {
		return routing.Storage{}, nil, errors.New("admin: no storage topology")
	}
	t := a.Topology.Current()
	s, ok := t.Entry(ref)
	if !ok {
		return routing.Storage{}, nil, paramErrorf("%s has no storage in the storage topology", ref)
	}
	return *s, t, nil
}

func (a *Admin) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func paramErrorf(format string, args ...any) error {
	return tradeunit.Errorf(tradeunit.CodeParamError, format, args...)
}

// unit returns the unit id of t, or a clear error.
func unit(t *routing.Table, id tradeunit.UnitID) (*routing.Unit, error) {
	u, ok := t.Unit(id)
	if !ok {
		return nil, paramErrorf("unit %d is not in the routing table", id)
	}
	return u, nil
}

// NewUnit describes a unit to add.
type NewUnit struct {
	ID         tradeunit.UnitID
	Partition  string
	LogicAddrs []string // empty: a local cluster (tradeunit dev) starts the logic services
	Storage    routing.Storage
	Weight     float64
	Labels     map[string]string
	LogicZones map[string]string // the zone of each logic address (optional)
	Standby    bool              // see routing.Unit.Standby
}

// AddUnit prepares a new unit's storage (schema and sequence) and registers
// it: its storage in the topology first, then the unit in the routing
// table, so that no proxy routes to a unit whose logic services cannot find
// their storage. A unit with logic addresses takes new orders at once; one
// without is registered unavailable, for tradeunit dev to start its logic
// services and make it available. Unit numbers only grow: a new unit's
// number must be above every existing one, so an order number never names
// two units.
func (a *Admin) AddUnit(ctx context.Context, n NewUnit) (*routing.Table, error) {
	if err := n.ID.Validate(); err != nil {
		return nil, err
	}
	if !n.Storage.HasPrimary() {
		return nil, paramErrorf("unit %d needs a storage DSN", n.ID)
	}
	cur := a.Routes.Current()
	if _, exists := cur.Unit(n.ID); exists {
		return nil, paramErrorf("unit %d already exists", n.ID)
	}
	if top := maxUnit(cur); n.ID <= top {
		return nil, paramErrorf("unit numbers only grow: the new unit's number must be above %d, got %d", top, n.ID)
	}
	add := func(t *routing.Table) error {
		if _, exists := t.Unit(n.ID); exists || n.ID <= maxUnit(t) {
			return paramErrorf("unit %d was added meanwhile", n.ID)
		}
		t.Units = append(t.Units, routing.Unit{
			ID: n.ID, Partition: n.Partition, LogicAddrs: n.LogicAddrs,
			Available: len(n.LogicAddrs) > 0, Temperature: routing.Hot, AcceptNew: true,
			Weight: n.Weight, Labels: n.Labels, LogicZones: n.LogicZones, Standby: n.Standby,
		})
		t.Normalize()
		return nil
	}
	// The table change is checked before anything is written: the storage
	// goes first, and a refused unit must leave no storage entry behind.
	trial := cur.Clone()
	if err := add(trial); err != nil {
		return nil, err
	}
	if err := trial.Validate(); err != nil {
		return nil, err
	}
	check := a.CheckStorage
	if check == nil {
		check = a.openStorage
	}
	if err := check(ctx, n.Storage.Primary); err != nil {
		return nil, paramErrorf("unit %d: storage %s does not answer: %v", n.ID, n.Storage.Primary, err)
	}
	if _, err := a.updateStorage(ctx, fmt.Sprintf("unit add %d: storage %s", n.ID, n.Storage.Primary), func(t *routing.Topology) error {
		t.Set(n.ID, n.Storage)
		return nil
	}); err != nil {
		return nil, err
	}
	return a.update(ctx, fmt.Sprintf("unit add %d", n.ID), add)
}

func maxUnit(t *routing.Table) tradeunit.UnitID {
	var top tradeunit.UnitID
	for _, u := range t.Units {
		top = max(top, u.ID)
	}
	return top
}

func (a *Admin) openStorage(ctx context.Context, d dsn.DSN) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := sqlstore.Open(ctx, d, a.Passwords)
	if err != nil {
		return err
	}
	return s.Close()
}

// Drain stops new orders to a unit; updates and reads of its orders go on.
// Draining the last unit of a partition that takes new orders is refused
// unless force is set: the partition would refuse or spill every create.
func (a *Admin) Drain(ctx context.Context, id tradeunit.UnitID, force bool) (*routing.Table, error) {
	return a.update(ctx, fmt.Sprintf("unit drain %d", id), func(t *routing.Table) error {
		u, err := unit(t, id)
		if err != nil {
			return err
		}
		u.AcceptNew = false
		if !force && !anyTakesNew(t, u.Partition) {
			return paramErrorf("unit %d is the last unit of partition %s that takes new orders; add or undrain another first (or --force)", id, u.Partition)
		}
		return nil
	})
}

// Undrain lets a unit take new orders again.
func (a *Admin) Undrain(ctx context.Context, id tradeunit.UnitID) (*routing.Table, error) {
	return a.update(ctx, fmt.Sprintf("unit undrain %d", id), func(t *routing.Table) error {
		u, err := unit(t, id)
		if err != nil {
			return err
		}
		u.AcceptNew = true
		return nil
	})
}

func anyTakesNew(t *routing.Table, partition string) bool {
	for i := range t.Units {
		if u := &t.Units[i]; u.Partition == partition && u.TakesNewOrders() {
			return true
		}
	}
	return false
}

// UnitChanges are the fields `unit set` may change; nil leaves a field alone.
type UnitChanges struct {
	Partition   *string
	Weight      *float64
	Temperature *routing.Temperature
	Available   *bool
	Standby     *bool
	Labels      map[string]string // a value of "" removes the label
	// LogicZones sets the zones of logic addresses, StorageZones those of
	// storage servers (in the topology); a zone of "" removes the entry.
	LogicZones   map[string]string
	StorageZones map[string]string
}

// SetUnit changes a unit's settings.
func (a *Admin) SetUnit(ctx context.Context, id tradeunit.UnitID, c UnitChanges) (*routing.Table, error) {
	var what []string
	if c.Partition != nil {
		what = append(what, "partition="+*c.Partition)
	}
	if c.Weight != nil {
		what = append(what, fmt.Sprintf("weight=%g", *c.Weight))
	}
	if c.Temperature != nil {
		what = append(what, "temperature="+string(*c.Temperature))
	}
	if c.Available != nil {
		what = append(what, fmt.Sprintf("available=%v", *c.Available))
	}
	if c.Standby != nil {
		what = append(what, fmt.Sprintf("standby=%v", *c.Standby))
	}
	for _, k := range slices.Sorted(maps.Keys(c.Labels)) {
		what = append(what, "label "+k+"="+c.Labels[k])
	}
	for _, k := range slices.Sorted(maps.Keys(c.LogicZones)) {
		what = append(what, "logic-zone "+k+"="+c.LogicZones[k])
	}
	if len(what) == 0 && len(c.StorageZones) == 0 {
		return nil, paramErrorf("unit set %d: nothing to change", id)
	}
	if len(c.StorageZones) > 0 {
		if err := a.setStorageZones(ctx, id, c.StorageZones); err != nil {
			return nil, err
		}
		if len(what) == 0 {
			return a.Routes.Current(), nil
		}
	}
	if c.Weight != nil && *c.Weight <= 0 {
		return nil, paramErrorf("weight must be positive (drain the unit to stop new orders), got %g", *c.Weight)
	}
	return a.update(ctx, fmt.Sprintf("unit set %d %s", id, strings.Join(what, " ")), func(t *routing.Table) error {
		u, err := unit(t, id)
		if err != nil {
			return err
		}
		if c.Partition != nil {
			u.Partition = *c.Partition
		}
		if c.Weight != nil {
			u.Weight = *c.Weight
		}
		if c.Temperature != nil {
			if err := checkTemperatureChange(u, *c.Temperature); err != nil {
				return err
			}
			u.Temperature = *c.Temperature
		}
		if c.Available != nil {
			u.Available = *c.Available
		}
		if c.Standby != nil {
			u.Standby = *c.Standby
		}
		u.LogicZones = mergeZones(u.LogicZones, c.LogicZones)
		for k, v := range c.Labels {
			if u.Labels == nil {
				u.Labels = map[string]string{}
			}
			if v == "" {
				delete(u.Labels, k)
			} else {
				u.Labels[k] = v
			}
		}
		return nil
	})
}

// HistoryEntry is one change of the routing table or of the storage
// topology.
type HistoryEntry struct {
	Document string `json:"document"` // "table" or "storage"
	routing.Change
}

// History returns the latest changes of the table and of the storage
// topology, newest first.
func (a *Admin) History(ctx context.Context, limit int) ([]HistoryEntry, error) {
	if limit < 1 {
		return nil, paramErrorf("limit must be positive, got %d", limit)
	}
	var out []HistoryEntry
	table, err := a.Routes.History(ctx, limit)
	if err != nil {
		return nil, err
	}
	for _, c := range table {
		out = append(out, HistoryEntry{Document: "table", Change: c})
	}
	if a.Topology != nil {
		storage, err := a.Topology.History(ctx, limit)
		if err != nil {
			return nil, err
		}
		for _, c := range storage {
			out = append(out, HistoryEntry{Document: "storage", Change: c})
		}
	}
	slices.SortStableFunc(out, func(x, y HistoryEntry) int { return y.Time.Compare(x.Time) })
	return out[:min(limit, len(out))], nil
}

// checkTemperatureChange allows an operator to set only hot or warm, and
// only on a unit that is hot or warm: the later steps say where the unit's
// data is, and only the move to cold storage (package lifecycle) sets them.
func checkTemperatureChange(u *routing.Unit, to routing.Temperature) error {
	if to != routing.Hot && to != routing.Warm {
		return paramErrorf("unit %d: temperature %q is a step of the move to cold storage: run tradeunit admin unit cool (only hot and warm are set by hand)", u.ID, to)
	}
	if u.Temperature != routing.Hot && u.Temperature != routing.Warm {
		return paramErrorf("unit %d is %s: its data is moving or moved to cold storage (tradeunit admin unit cool --abort or --undo first)", u.ID, u.Temperature)
	}
	return nil
}
