// Package routing holds the routing table of the unitized order system: which
// transaction units exist, where their logic services and storage are, and
// which of them may take new orders. The stateless proxy reads it on every
// request; operators edit it to add, mask, drain or cool units.
//
// A Table is immutable once published: readers share one *Table without
// locks, and editors Clone it, change the copy and publish a new one. A Source
// publishes the current table and its changes; File is the file backend.
package routing

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"

	"tradeunit"
)

// Temperature is a unit's place in its lifecycle (seed 000 §5.4): what
// traffic it serves, by the age of its orders, and how far the move of its
// data to cold storage has come. Package lifecycle moves a unit along it;
// see Lifecycle for the order of the steps.
type Temperature string

// The temperatures of a unit, in lifecycle order.
const (
	Hot  Temperature = "hot"  // takes new orders, updates and reads
	Warm Temperature = "warm" // no new orders; updates and reads of its orders
	// Copying: warm, while its data is copied to its cold storage.
	Copying Temperature = "copying"
	// Freezing: updates wait (bounded) while the copy is brought exactly
	// up to date; reads are served.
	Freezing Temperature = "freezing"
	// Verifying: still frozen, while both sides are compared range by
	// range before the storage mapping is switched.
	Verifying Temperature = "verifying"
	// Cold: the cold copy serves reads and the updates the cold policy
	// allows; the old data is still there, so the move can be undone.
	Cold Temperature = "cold"
	// Retired: as cold, and the old data is deleted: its storage is free
	// for a fresh unit.
	Retired Temperature = "retired"
)

// Lifecycle lists the temperatures in the order a unit passes them.
var Lifecycle = []Temperature{Hot, Warm, Copying, Freezing, Verifying, Cold, Retired}

// Valid reports whether t is a known temperature ("" stands for hot).
func (t Temperature) Valid() bool { return t == "" || slices.Contains(Lifecycle, t) }

// IsCold reports whether the unit's orders are served by its cold copy.
func (t Temperature) IsCold() bool { return t == Cold || t == Retired }

// Moving reports whether the unit's data is being moved to cold storage.
func (t Temperature) Moving() bool { return t == Copying || t == Freezing || t == Verifying }

// Frozen reports whether the unit's updates wait for the move's switch.
func (t Temperature) Frozen() bool { return t == Freezing || t == Verifying }

// DefaultPartition is the partition of a unit that names none.
const DefaultPartition = "normal"

// Unit is one transaction unit's entry in the routing table.
type Unit struct {
	ID        tradeunit.UnitID `json:"unit"`
	Partition string           `json:"partition"` // DefaultPartition when empty
	// LogicAddrs are the host:port addresses of the unit's logic-service
	// replicas.
	LogicAddrs []string `json:"logic_addrs"`
	// Available false masks the unit (failed or under maintenance): no call
	// is routed to it.
	Available   bool        `json:"available"`
	Temperature Temperature `json:"temperature"` // Hot when empty
	// AcceptNew says whether the unit takes new orders; draining a unit
	// sets it false.
	AcceptNew bool `json:"accept_new"`
	// Weight is the unit's capacity for new orders relative to the others;
	// 0 means the default, 1. To stop new orders, clear AcceptNew.
	Weight float64           `json:"weight,omitempty"`
	Labels map[string]string `json:"labels,omitempty"` // e.g. a release label for canary
	// LogicZones maps some or all of LogicAddrs to the zone (machine room)
	// each replica runs in, so that a proxy calls the replicas of its own
	// zone first (see zones.go). A separate map, not a field per address,
	// so that tables without zones read and write as before.
	LogicZones map[string]string `json:"logic_zones,omitempty"`
	// Standby units take no new orders while their partition has an
	// eligible unit that is not a standby, and take the partition's new
	// orders when it has none (see package selection), before the
	// partition's OnNoUnit policy applies.
	Standby bool `json:"standby,omitempty"`
}

// TakesNewOrders reports whether new orders may be created in u: it is
// available, hot and accepts new orders.
func (u *Unit) TakesNewOrders() bool {
	return u.Available && u.AcceptNew && (u.Temperature == Hot || u.Temperature == "")
}

// partition returns u's partition with the default applied.
func (u *Unit) partition() string {
	if u.Partition == "" {
		return DefaultPartition
	}
	return u.Partition
}

// Table is the routing table: every unit, with a revision that increases with
// every change (backends use it for compare-and-swap), and the policy that
// selection of a unit for a new order follows (see policy.go and package
// selection).
type Table struct {
	Revision int64  `json:"revision"`
	Units    []Unit `json:"units"`
	// Partitions holds each partition's policy: what to do when it has no
	// unit left, and its canary. A partition without an entry refuses and
	// has no canary.
	Partitions map[string]Partition `json:"partitions,omitempty"`
	// Merchants maps a merchant id to the partition of its new orders;
	// unmapped merchants go to DefaultPartition.
	Merchants map[string]string `json:"merchants,omitempty"`
	// Blacklist lists units that operators blocked from new orders, sorted
	// by unit.
	Blacklist []BlacklistEntry `json:"blacklist,omitempty"`
	// Directory maps the merchant-key directory's buckets to its shards;
	// nil without a directory (creates are then refused).
	Directory *Directory `json:"directory,omitempty"`
	// EvacuatedZones are the zones an operator moved traffic out of
	// (tradeunit admin zone evacuate): proxies call logic replicas there
	// only when a unit has no other, and new orders go to no unit whose
	// every logic replica is there. Sorted, no duplicates.
	EvacuatedZones []string `json:"evacuated_zones,omitempty"`

	// index maps a unit id to its position in Units. Built by Normalize;
	// Unit checks each hit, so a stale index is slow, never wrong.
	index map[tradeunit.UnitID]int
}

// Parse decodes a routing table from JSON, fills defaults and validates it.
// Unknown fields and trailing data are rejected. Errors: PARAM_ERROR.
func Parse(data []byte) (*Table, error) { return parse[Table](data) }

func (t *Table) decode(data []byte) error {
	if err := decodeStrict("routing table", data, t); err != nil {
		return err
	}
	t.Normalize()
	return t.Validate()
}

func (t *Table) revision() int64     { return t.Revision }
func (t *Table) setRevision(r int64) { t.Revision = r }
func (*Table) kind() kind            { return tableKind }

var tableKind = kind{name: "routing table", etcdKey: "table", history: "history"}

// Marshal encodes t as indented JSON with its units sorted by id. It does not
// change t.
func (t *Table) Marshal() ([]byte, error) {
	out := Table{Revision: t.Revision, Units: slices.Clone(t.Units),
		Partitions: t.Partitions, Merchants: t.Merchants, Blacklist: t.Blacklist, Directory: t.Directory.clone(),
		EvacuatedZones: t.EvacuatedZones}
	if out.Directory != nil {
		out.Directory.normalize()
	}
	if out.Units == nil {
		out.Units = []Unit{} // "units": [] rather than null
	}
	slices.SortStableFunc(out.Units, compareUnits)
	data, err := json.MarshalIndent(&out, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("marshal routing table: %w", err)
	}
	return append(data, '\n'), nil
}

// Normalize fills defaults (partition, temperature, weight), sorts the units
// by id and builds the index that Unit uses. Call it on a table built as a
// literal before publishing it, and again after changing Units; Parse does
// it already and Clone keeps it.
func (t *Table) Normalize() {
	for i := range t.Units {
		u := &t.Units[i]
		if u.Partition == "" {
			u.Partition = DefaultPartition
		}
		if u.Temperature == "" {
			u.Temperature = Hot
		}
		if u.Weight == 0 {
			u.Weight = 1
		}
		if u.LogicAddrs == nil {
			u.LogicAddrs = []string{} // "logic_addrs": [] rather than null
		}
	}
	slices.SortStableFunc(t.Units, compareUnits)
	slices.SortStableFunc(t.Blacklist, func(a, b BlacklistEntry) int { return cmp.Compare(a.Unit, b.Unit) })
	slices.Sort(t.EvacuatedZones)
	t.EvacuatedZones = slices.Compact(t.EvacuatedZones)
	t.index = make(map[tradeunit.UnitID]int, len(t.Units))
	for i, u := range t.Units {
		t.index[u.ID] = i
	}
	if t.Directory != nil {
		t.Directory.normalize()
	}
}

func compareUnits(a, b Unit) int { return cmp.Compare(a.ID, b.ID) }

// Validate checks every unit: ids in 1..tradeunit.MaxUnitID and unique;
// temperature hot, warm or cold; weight finite and not negative; an available
// unit has at least one logic address; every address is host:port; the
// storage primary is set (or, while a failover is under way, at least one
// replica), no storage DSN is empty or listed twice; partition names match
// [a-z0-9_-]{1,32}; every logic_zones key is one of the unit's logic
// addresses and every zone name matches [a-z0-9_-]{1,32}. Empty
// partition and temperature stand for their defaults. Then the policy:
// partition policies (refuse, or spill to another known partition that is
// not PreReleasePartition; canary label, value and a share in 0..1), the
// merchant map (valid ids, never the probe merchant, known partitions) and
// the blacklist (units of the table, once each, with a reason). Errors:
// PARAM_ERROR, with a message naming the unit or entry and the field.
func (t *Table) Validate() error {
	if t.Revision < 0 {
		return tradeunit.Errorf(tradeunit.CodeParamError, "routing table: revision %d is negative", t.Revision)
	}
	seen := make(map[tradeunit.UnitID]bool, len(t.Units))
	for i := range t.Units {
		u := &t.Units[i]
		if err := u.validate(); err != nil {
			return err
		}
		if seen[u.ID] {
			return unitErrorf(u, "unit: duplicate unit number")
		}
		seen[u.ID] = true
	}
	if t.Directory != nil {
		if err := t.Directory.validate(); err != nil {
			return err
		}
	}
	for _, z := range t.EvacuatedZones {
		if !ValidZone(z) {
			return tradeunit.Errorf(tradeunit.CodeParamError, "routing table: evacuated_zones: zone %q must match [a-z0-9_-]{1,32}", z)
		}
	}
	return t.validatePolicy()
}

func (u *Unit) validate() error {
	if u.ID == 0 || u.ID > tradeunit.MaxUnitID {
		return unitErrorf(u, "unit: number out of range 1..%d", tradeunit.MaxUnitID)
	}
	if u.Partition != "" && !validPartition(u.Partition) {
		return unitErrorf(u, "partition %q must match [a-z0-9_-]{1,32}", u.Partition)
	}
	if !u.Temperature.Valid() {
		return unitErrorf(u, "temperature %q must be one of hot, warm, copying, freezing, verifying, cold, retired", u.Temperature)
	}
	if u.Weight < 0 || math.IsNaN(u.Weight) || math.IsInf(u.Weight, 0) {
		return unitErrorf(u, "weight %v must be finite and not negative", u.Weight)
	}
	if u.Available && len(u.LogicAddrs) == 0 {
		return unitErrorf(u, "logic_addrs: an available unit needs at least one address")
	}
	for i, a := range u.LogicAddrs {
		if err := validateAddr(a); err != nil {
			return unitErrorf(u, "logic_addrs[%d] %q: %v", i, a, err)
		}
	}
	return u.validateZones()
}

func unitErrorf(u *Unit, format string, args ...any) error {
	return tradeunit.Errorf(tradeunit.CodeParamError, "routing table: unit %d: %s", u.ID, fmt.Sprintf(format, args...))
}

// validPartition reports whether p matches [a-z0-9_-]{1,32}.
func validPartition(p string) bool {
	if len(p) == 0 || len(p) > 32 {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// validateAddr checks that a is host:port with a non-empty host and a port in
// 1..65535.
func validateAddr(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return errors.New("not host:port")
	}
	if host == "" || strings.ContainsAny(host, " \t/") {
		return errors.New("bad host")
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return errors.New("port must be 1..65535")
	}
	return nil
}

// Unit returns the unit with the given id. It is O(1) on a table built by
// Parse or Normalize (or cloned from one); after changing Units, call
// Normalize again. The returned unit belongs to the table: do not change it
// unless the table is your own clone.
func (t *Table) Unit(id tradeunit.UnitID) (*Unit, bool) {
	if i, ok := t.index[id]; ok && i < len(t.Units) && t.Units[i].ID == id {
		return &t.Units[i], true
	}
	if t.index != nil && len(t.index) == len(t.Units) {
		return nil, false // the index covers every unit: id is not there
	}
	// No index, or units were added or removed since Normalize: search.
	for i := range t.Units {
		if t.Units[i].ID == id {
			return &t.Units[i], true
		}
	}
	return nil, false
}

// Clone returns a deep copy of t, for an editor to change and publish.
func (t *Table) Clone() *Table {
	if t == nil {
		return nil
	}
	c := &Table{Revision: t.Revision, Units: make([]Unit, len(t.Units)),
		Merchants: maps.Clone(t.Merchants), Blacklist: slices.Clone(t.Blacklist), EvacuatedZones: slices.Clone(t.EvacuatedZones)}
	if t.Partitions != nil {
		c.Partitions = make(map[string]Partition, len(t.Partitions))
		for name, p := range t.Partitions {
			if p.Canary != nil {
				canary := *p.Canary
				p.Canary = &canary
			}
			c.Partitions[name] = p
		}
	}
	for i, u := range t.Units {
		u.LogicAddrs = slices.Clone(u.LogicAddrs)
		u.Labels = maps.Clone(u.Labels)
		u.LogicZones = maps.Clone(u.LogicZones)
		c.Units[i] = u
	}
	c.index = maps.Clone(t.index)
	c.Directory = t.Directory.clone()
	return c
}
