package routing

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"time"

	"tradeunit"
)

// StorageKind says whose storage an entry of the storage topology is.
type StorageKind string

// The kinds of storage entries.
const (
	UnitStorageKind  StorageKind = "unit"  // Topology.Units
	ShardStorageKind StorageKind = "shard" // Topology.Shards: a directory shard's
)

// StorageRef names one entry of the storage topology: a unit's storage or
// a directory shard's. The operations that work on any replicated storage
// alike (admin failover and rejoin) take one.
type StorageRef struct {
	Kind StorageKind `json:"kind"`
	ID   uint32      `json:"id"`
}

// UnitRef names unit id's storage.
func UnitRef(id tradeunit.UnitID) StorageRef {
	return StorageRef{Kind: UnitStorageKind, ID: uint32(id)}
}

// ShardRef names directory shard id's storage.
func ShardRef(id ShardID) StorageRef { return StorageRef{Kind: ShardStorageKind, ID: uint32(id)} }

// String names the entry in messages: "unit 3", "directory shard 1".
func (r StorageRef) String() string {
	switch r.Kind {
	case UnitStorageKind:
		return "unit " + strconv.FormatUint(uint64(r.ID), 10)
	case ShardStorageKind:
		return "directory shard " + strconv.FormatUint(uint64(r.ID), 10)
	}
	return fmt.Sprintf("%s %d", r.Kind, r.ID)
}

// Entry returns the storage of entry r: a pointer into t, to read, or to
// change on your own clone.
func (t *Topology) Entry(r StorageRef) (*Storage, bool) {
	switch r.Kind {
	case UnitStorageKind:
		if u, ok := t.Unit(tradeunit.UnitID(r.ID)); ok {
			return &u.Storage, true
		}
	case ShardStorageKind:
		if sh, ok := t.Shard(ShardID(r.ID)); ok {
			return &sh.Storage, true
		}
	}
	return nil, false
}

// SetLastFailover records when a failover last gave entry r a new primary;
// it does nothing for an entry t does not hold.
func (t *Topology) SetLastFailover(r StorageRef, at time.Time) {
	switch r.Kind {
	case UnitStorageKind:
		if u, ok := t.Unit(tradeunit.UnitID(r.ID)); ok {
			u.LastFailover = at
		}
	case ShardStorageKind:
		if sh, ok := t.Shard(ShardID(r.ID)); ok {
			sh.LastFailover = at
		}
	}
}

// Refs returns every entry of t: the units, then the shards, each by
// number.
func (t *Topology) Refs() []StorageRef {
	out := make([]StorageRef, 0, len(t.Units)+len(t.Shards))
	for _, u := range t.Units {
		out = append(out, UnitRef(u.Unit))
	}
	shards := make([]StorageRef, 0, len(t.Shards))
	for _, sh := range t.Shards {
		shards = append(shards, ShardRef(sh.Shard))
	}
	slices.SortFunc(shards, func(a, b StorageRef) int { return cmp.Compare(a.ID, b.ID) })
	return append(out, shards...)
}
