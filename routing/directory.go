package routing

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"tradeunit"
)

// ShardID is a directory shard's number.
type ShardID uint32

// Directory maps the merchant-key directory's buckets
// (tradeunit.DirectoryBuckets of them) to its shards: every bucket to
// exactly one shard. Proxies route a key by its bucket.
type Directory struct {
	Shards []DirectoryShard `json:"shards"`

	byBucket []int16 // bucket → index in Shards; built by Normalize
}

// DirectoryShard is one shard of the directory: the buckets it holds and
// its service replicas. Its storage is in the storage topology.
type DirectoryShard struct {
	Shard      ShardID       `json:"shard"`
	Buckets    []BucketRange `json:"buckets"`
	LogicAddrs []string      `json:"logic_addrs"`
	// Available false masks the shard: creates and lookups of its keys get
	// UNIT_UNAVAILABLE at once.
	Available bool `json:"available"`
	// Frozen buckets are being moved to another shard (admin directory
	// move): their keys are refused (retry later) until the move ends.
	Frozen []BucketRange `json:"frozen,omitempty"`
}

// BucketRange is the buckets From..To, both included.
type BucketRange struct {
	From int `json:"from"`
	To   int `json:"to"`
}

// Contains reports whether bucket b is in r.
func (r BucketRange) Contains(b int) bool { return r.From <= b && b <= r.To }

// AllBuckets is every bucket.
var AllBuckets = BucketRange{From: 0, To: tradeunit.DirectoryBuckets - 1}

// SplitBuckets returns a directory of the shards ids (no addresses yet,
// available), the buckets split among them in contiguous ranges of sizes
// that differ by one at most: how a new directory starts.
func SplitBuckets(ids []ShardID) *Directory {
	d := &Directory{}
	n := len(ids)
	for i, id := range ids {
		from, to := i*tradeunit.DirectoryBuckets/n, (i+1)*tradeunit.DirectoryBuckets/n-1
		d.Shards = append(d.Shards, DirectoryShard{Shard: id, Buckets: []BucketRange{{From: from, To: to}}, Available: true})
	}
	return d
}

// ShardOf returns the shard holding bucket b, and whether b is frozen.
func (d *Directory) ShardOf(b int) (*DirectoryShard, bool) {
	if d == nil || b < 0 || b >= tradeunit.DirectoryBuckets {
		return nil, false
	}
	if d.byBucket == nil {
		d = d.clone()
		d.normalize()
	}
	i := d.byBucket[b]
	if i < 0 {
		return nil, false
	}
	s := &d.Shards[i]
	for _, r := range s.Frozen {
		if r.Contains(b) {
			return s, true
		}
	}
	return s, false
}

// Shard returns the shard numbered id.
func (d *Directory) Shard(id ShardID) (*DirectoryShard, bool) {
	if d == nil {
		return nil, false
	}
	for i := range d.Shards {
		if d.Shards[i].Shard == id {
			return &d.Shards[i], true
		}
	}
	return nil, false
}

func (d *Directory) normalize() {
	slices.SortStableFunc(d.Shards, func(a, b DirectoryShard) int { return cmp.Compare(a.Shard, b.Shard) })
	d.byBucket = make([]int16, tradeunit.DirectoryBuckets)
	for i := range d.byBucket {
		d.byBucket[i] = -1
	}
	for i, s := range d.Shards {
		if d.Shards[i].LogicAddrs == nil {
			d.Shards[i].LogicAddrs = []string{}
		}
		for _, r := range s.Buckets {
			for b := max(r.From, 0); b <= min(r.To, tradeunit.DirectoryBuckets-1); b++ {
				d.byBucket[b] = int16(i)
			}
		}
	}
}

// validate checks that the shards are numbered once each, hold valid
// ranges that together cover every bucket exactly once, and that each
// available shard has an address.
func (d *Directory) validate() error {
	errorf := func(format string, args ...any) error {
		return tradeunit.Errorf(tradeunit.CodeParamError, "routing table: directory: %s", fmt.Sprintf(format, args...))
	}
	owner := make([]ShardID, tradeunit.DirectoryBuckets)
	seen := map[ShardID]bool{}
	for _, s := range d.Shards {
		if s.Shard == 0 {
			return errorf("shard number 0: shards are numbered from 1")
		}
		if seen[s.Shard] {
			return errorf("shard %d is listed twice", s.Shard)
		}
		seen[s.Shard] = true
		if s.Available && len(s.LogicAddrs) == 0 {
			return errorf("shard %d: an available shard needs at least one address", s.Shard)
		}
		for i, a := range s.LogicAddrs {
			if err := validateAddr(a); err != nil {
				return errorf("shard %d: logic_addrs[%d] %q: %v", s.Shard, i, a, err)
			}
		}
		for _, r := range append(slices.Clone(s.Buckets), s.Frozen...) {
			if r.From < 0 || r.To >= tradeunit.DirectoryBuckets || r.From > r.To {
				return errorf("shard %d: bucket range %d-%d is not within 0-%d", s.Shard, r.From, r.To, tradeunit.DirectoryBuckets-1)
			}
		}
		for _, r := range s.Buckets {
			for b := r.From; b <= r.To; b++ {
				if owner[b] != 0 {
					return errorf("bucket %d is in shards %d and %d", b, owner[b], s.Shard)
				}
				owner[b] = s.Shard
			}
		}
		for _, r := range s.Frozen {
			for b := r.From; b <= r.To; b++ {
				if owner[b] != s.Shard {
					return errorf("shard %d freezes bucket %d, which it does not hold", s.Shard, b)
				}
			}
		}
	}
	for b, o := range owner {
		if o == 0 {
			return errorf("bucket %d is in no shard: every one of the %d buckets needs a shard", b, tradeunit.DirectoryBuckets)
		}
	}
	return nil
}

func (d *Directory) clone() *Directory {
	if d == nil {
		return nil
	}
	c := &Directory{Shards: make([]DirectoryShard, len(d.Shards)), byBucket: d.byBucket}
	for i, s := range d.Shards {
		s.Buckets, s.Frozen, s.LogicAddrs = slices.Clone(s.Buckets), slices.Clone(s.Frozen), slices.Clone(s.LogicAddrs)
		c.Shards[i] = s
	}
	return c
}

// ShardStorage is one directory shard's entry in the storage topology.
type ShardStorage struct {
	Shard ShardID `json:"shard"`
	Storage
	// LastFailover is when a failover last gave the shard a new primary.
	LastFailover time.Time `json:"last_failover,omitzero"`
}
