package routing

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"tradeunit"
	"tradeunit/dsn"
)

// Topology is the private half of the routing table: where each unit keeps
// its data (its storage primary, replicas and fenced servers). Only the
// unit's logic services, the controllers and operators read it; proxies and
// health checkers never do, so a storage address never travels further than
// it must. It holds no password: every DSN names its user, and the host
// that connects resolves the password from its own secrets (package
// secrets).
//
// It lives beside the routing table, in the same backend, with its own
// revision and history: for a table file routes.json in routes.storage.json
// (TopologyPath); in etcd under PREFIX/storage. Operators change it with
// compare-and-swap updates like the table; a failover is a storage change
// only, and the storage mapping is written before any traffic moves.
type Topology struct {
	Revision int64         `json:"revision"`
	Units    []UnitStorage `json:"units"`
	// Shards is where each directory shard keeps its entries.
	Shards []ShardStorage `json:"shards,omitempty"`

	index map[tradeunit.UnitID]int // built by Normalize; checked on each hit
}

// Storage is where a unit keeps its data (its entry in the storage
// topology): one primary and its replicas, each a DSN such as
// "sqlite:data/unit-1.db" or "mysql:tradeunit@tcp(127.0.0.1:3306)/tradeunit_u1"
// (never with a password: see package dsn). A unit's logic services started
// with --routes follow it: they write to the primary and serve eventual
// reads (and, when the primary is down, degraded ones) from the replicas.
type Storage struct {
	// Primary is the one writable server. It is the zero DSN only while a
	// failover is under way (see admin.Failover): the old primary is
	// fenced and the new one not yet promoted, so changes are refused and
	// reads go to the replicas.
	Primary  dsn.DSN   `json:"primary"`
	Replicas []dsn.DSN `json:"replicas,omitempty"`
	// Fenced lists servers a failover took out of the unit: old primaries,
	// read-only, that may hold transactions no other server has. Nothing
	// reads or writes them; each rejoins as a replica (admin.Rejoin) or is
	// rebuilt.
	Fenced []dsn.DSN `json:"fenced,omitempty"`
	// Zones maps some or all of the servers above (DSN.Server: host:port,
	// or a SQLite path) to their zone, keyed by server rather than by role
	// so that a failover, which moves servers between roles, leaves it
	// right. See zones.go.
	Zones map[string]string `json:"zones,omitempty"`
}

// HasPrimary reports whether s names a primary (it does not while a
// failover is under way).
func (s *Storage) HasPrimary() bool { return s.Primary != dsn.DSN{} }

// validate checks a unit's storage: a primary (or, during a failover, none
// but at least one replica to read), a database on every MySQL server, no
// replicas of a SQLite file, and no server in two roles.
func (s *Storage) validate(owner string) error {
	errorf := func(format string, args ...any) error {
		return tradeunit.Errorf(tradeunit.CodeParamError, "storage topology: %s: %s", owner, fmt.Sprintf(format, args...))
	}
	if !s.HasPrimary() && len(s.Replicas) == 0 {
		return errorf("primary is empty")
	}
	if s.Primary.Scheme == dsn.SQLite && len(s.Replicas)+len(s.Fenced) > 0 {
		return errorf("a SQLite file has no replicas")
	}
	seen := map[string]string{}
	check := func(field string, d dsn.DSN) error {
		if d == (dsn.DSN{}) {
			return errorf("%s is empty", field)
		}
		if d.Scheme == dsn.MySQL {
			if err := d.RequireDatabase(); err != nil {
				return errorf("%s: %s", field, tradeunit.ErrorMessage(err))
			}
		}
		if prev, dup := seen[d.Server()]; dup {
			return errorf("%s names the same server as %s", field, prev)
		}
		seen[d.Server()] = field
		return nil
	}
	if s.HasPrimary() {
		if err := check("primary", s.Primary); err != nil {
			return err
		}
	}
	for i, r := range s.Replicas {
		if err := check(fmt.Sprintf("replicas[%d]", i), r); err != nil {
			return err
		}
	}
	for i, f := range s.Fenced {
		if err := check(fmt.Sprintf("fenced[%d]", i), f); err != nil {
			return err
		}
	}
	return s.validateZones(owner)
}

// clone returns a deep copy of s.
func (s Storage) clone() Storage {
	s.Replicas, s.Fenced, s.Zones = slices.Clone(s.Replicas), slices.Clone(s.Fenced), maps.Clone(s.Zones)
	return s
}

// UnitStorage is one unit's entry in the topology.
type UnitStorage struct {
	Unit tradeunit.UnitID `json:"unit"`
	Storage
	// LastFailover is when a failover last gave the unit a new primary.
	LastFailover time.Time `json:"last_failover,omitzero"`

	// The move to cold storage (package lifecycle). While it copies,
	// ColdCopy is where to; from the switch on, the primary is the cold
	// copy and Cold is set, so the unit's logic services apply the cold
	// policy; Previous is the storage it left, kept (frozen) until the
	// move is made final and its data deleted.
	ColdCopy dsn.DSN `json:"cold_copy,omitzero"`
	// ColdCopyAfter is the old storage's last outbox event when the last
	// live copy began: the freeze copies only what changed after it
	// (sqlstore.SyncChanged). 0: not known, the freeze compares everything.
	ColdCopyAfter int64    `json:"cold_copy_after,omitempty"`
	Cold          bool     `json:"cold,omitempty"`
	Previous      *Storage `json:"previous,omitempty"`
}

// validateMove checks the fields of a move to cold storage: a cold copy
// other than the primary, and a previous storage only once cold.
func (u *UnitStorage) validateMove() error {
	errorf := func(format string, args ...any) error {
		return tradeunit.Errorf(tradeunit.CodeParamError, "storage topology: unit %d: %s", u.Unit, fmt.Sprintf(format, args...))
	}
	if u.ColdCopyAfter != 0 && u.ColdCopy == (dsn.DSN{}) {
		return errorf("cold_copy_after is set without a cold copy")
	}
	if u.ColdCopy != (dsn.DSN{}) {
		if u.Cold {
			return errorf("cold_copy is set on a unit already cold")
		}
		if u.ColdCopy.Server() == u.Primary.Server() && u.ColdCopy.Database == u.Primary.Database {
			return errorf("cold_copy is the primary itself")
		}
	}
	if u.Previous != nil {
		if !u.Cold {
			return errorf("previous storage is set on a unit that is not cold")
		}
		return u.Previous.validate(fmt.Sprintf("unit %d: previous", u.Unit))
	}
	return nil
}

// ParseTopology decodes a storage topology from JSON, fills defaults and
// validates it. Unknown fields and trailing data are rejected. Errors:
// PARAM_ERROR.
func ParseTopology(data []byte) (*Topology, error) { return parse[Topology](data) }

func (t *Topology) decode(data []byte) error {
	if err := decodeStrict(topologyKind.name, data, t); err != nil {
		return err
	}
	t.Normalize()
	return t.Validate()
}

var topologyKind = kind{name: "storage topology", etcdKey: "storage", history: "storage-history"}

func (t *Topology) revision() int64     { return t.Revision }
func (t *Topology) setRevision(r int64) { t.Revision = r }
func (*Topology) kind() kind            { return topologyKind }

// Marshal encodes t as indented JSON with its units sorted by id.
func (t *Topology) Marshal() ([]byte, error) {
	out := Topology{Revision: t.Revision, Units: slices.Clone(t.Units), Shards: slices.Clone(t.Shards)}
	slices.SortStableFunc(out.Shards, func(a, b ShardStorage) int { return cmp.Compare(a.Shard, b.Shard) })
	if out.Units == nil {
		out.Units = []UnitStorage{}
	}
	slices.SortStableFunc(out.Units, func(a, b UnitStorage) int { return cmp.Compare(a.Unit, b.Unit) })
	data, err := json.MarshalIndent(&out, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("marshal storage topology: %w", err)
	}
	return append(data, '\n'), nil
}

// Normalize sorts the units and builds the index that Unit uses.
func (t *Topology) Normalize() {
	slices.SortStableFunc(t.Units, func(a, b UnitStorage) int { return cmp.Compare(a.Unit, b.Unit) })
	t.index = make(map[tradeunit.UnitID]int, len(t.Units))
	for i, u := range t.Units {
		t.index[u.Unit] = i
	}
}

// Validate checks every entry: unit numbers in range and listed once, and
// each unit's storage (see Storage). Errors: PARAM_ERROR.
func (t *Topology) Validate() error {
	if t.Revision < 0 {
		return tradeunit.Errorf(tradeunit.CodeParamError, "storage topology: revision %d is negative", t.Revision)
	}
	seen := make(map[tradeunit.UnitID]bool, len(t.Units))
	for i := range t.Units {
		u := &t.Units[i]
		if err := u.Unit.Validate(); err != nil {
			return tradeunit.Errorf(tradeunit.CodeParamError, "storage topology: units[%d]: %v", i, tradeunit.ErrorMessage(err))
		}
		if seen[u.Unit] {
			return tradeunit.Errorf(tradeunit.CodeParamError, "storage topology: unit %d is listed twice", u.Unit)
		}
		seen[u.Unit] = true
		if err := u.Storage.validate(fmt.Sprintf("unit %d", u.Unit)); err != nil {
			return err
		}
		if err := u.validateMove(); err != nil {
			return err
		}
	}
	shards := map[ShardID]bool{}
	for _, sh := range t.Shards {
		if sh.Shard == 0 || shards[sh.Shard] {
			return tradeunit.Errorf(tradeunit.CodeParamError, "storage topology: shard %d is numbered 0 or listed twice", sh.Shard)
		}
		shards[sh.Shard] = true
		if err := sh.Storage.validate(fmt.Sprintf("shard %d", sh.Shard)); err != nil {
			return err
		}
	}
	return nil
}

// Shard returns the storage of directory shard id.
func (t *Topology) Shard(id ShardID) (*ShardStorage, bool) {
	for i := range t.Shards {
		if t.Shards[i].Shard == id {
			return &t.Shards[i], true
		}
	}
	return nil, false
}

// SetShard gives directory shard id the storage s, adding it if needed.
func (t *Topology) SetShard(id ShardID, s Storage) {
	if sh, ok := t.Shard(id); ok {
		sh.Storage = s
		return
	}
	t.Shards = append(t.Shards, ShardStorage{Shard: id, Storage: s})
}

// Unit returns the storage of unit id.
func (t *Topology) Unit(id tradeunit.UnitID) (*UnitStorage, bool) {
	if i, ok := t.index[id]; ok && i < len(t.Units) && t.Units[i].Unit == id {
		return &t.Units[i], true
	}
	for i := range t.Units {
		if t.Units[i].Unit == id {
			return &t.Units[i], true
		}
	}
	return nil, false
}

// Set gives unit id the storage s, adding the unit if it has no entry.
// Call it on your own clone; it keeps the index current.
func (t *Topology) Set(id tradeunit.UnitID, s Storage) {
	if u, ok := t.Unit(id); ok {
		u.Storage = s
		return
	}
	t.Units = append(t.Units, UnitStorage{Unit: id, Storage: s})
	t.Normalize()
}

// Clone returns a deep copy of t.
func (t *Topology) Clone() *Topology {
	if t == nil {
		return nil
	}
	c := &Topology{Revision: t.Revision, Units: make([]UnitStorage, len(t.Units)), index: maps.Clone(t.index)}
	for i, u := range t.Units {
		u.Storage = u.Storage.clone()
		if u.Previous != nil {
			prev := u.Previous.clone()
			u.Previous = &prev
		}
		c.Units[i] = u
	}
	for _, sh := range t.Shards {
		sh.Storage = sh.Storage.clone()
		c.Shards = append(c.Shards, sh)
	}
	return c
}
