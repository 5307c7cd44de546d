package routing

import (
	"strconv"
	"strings"
	"testing"

	"tradeunit"
)

func twoShards() *Directory {
	return &Directory{Shards: []DirectoryShard{
		{Shard: 2, Buckets: []BucketRange{{2048, 4095}}, LogicAddrs: []string{"h:2"}, Available: true},
		{Shard: 1, Buckets: []BucketRange{{0, 1023}, {1024, 2047}}, LogicAddrs: []string{"h:1"}, Available: true, Frozen: []BucketRange{{10, 19}}},
	}}
}

func TestDirectoryValidate(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(d *Directory)
		wantErr string
	}{
		{"two shards", func(*Directory) {}, ""},
		{"a bucket in no shard", func(d *Directory) { d.Shards[0].Buckets[0].To = 4094 }, "bucket 4095 is in no shard"},
		{"a bucket in two shards", func(d *Directory) { d.Shards[0].Buckets[0].From = 2047 }, "bucket 2047 is in shards"},
		{"out of range", func(d *Directory) { d.Shards[0].Buckets[0].To = 4096 }, "not within"},
		{"reversed", func(d *Directory) { d.Shards[0].Buckets[0] = BucketRange{3000, 2048} }, "not within"},
		{"shard 0", func(d *Directory) { d.Shards[0].Shard = 0 }, "numbered from 1"},
		{"twice", func(d *Directory) { d.Shards[0].Shard = 1 }, "listed twice"},
		{"no address", func(d *Directory) { d.Shards[0].LogicAddrs = nil }, "needs at least one address"},
		{"frozen elsewhere", func(d *Directory) { d.Shards[1].Frozen = []BucketRange{{3000, 3001}} }, "does not hold"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := twoShards()
			tt.edit(d)
			err := (&Table{Directory: d}).Validate()
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("got %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestDirectoryShardOf(t *testing.T) {
	tbl := &Table{Revision: 1, Directory: twoShards()}
	tbl.Normalize()
	data, err := tbl.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		bucket int
		shard  ShardID
		frozen bool
	}{{0, 1, false}, {15, 1, true}, {2047, 1, false}, {2048, 2, false}, {4095, 2, false}} {
		s, frozen := back.Directory.ShardOf(tt.bucket)
		if s == nil || s.Shard != tt.shard || frozen != tt.frozen {
			t.Errorf("bucket %d: got %+v frozen %v, want shard %d frozen %v", tt.bucket, s, frozen, tt.shard, tt.frozen)
		}
	}
	if s, _ := back.Directory.ShardOf(tradeunit.DirectoryBuckets); s != nil {
		t.Errorf("bucket out of range: got shard %d", s.Shard)
	}
	c := back.Clone()
	c.Directory.Shards[0].Buckets[0].To = 0
	if s, _ := back.Directory.ShardOf(1000); s.Shard != 1 {
		t.Errorf("changing a clone changed the original")
	}
}

func TestBucketIsStable(t *testing.T) {
	// The hash is part of the data's layout: buckets are stored with the
	// entries. It must never change.
	k := tradeunit.MerchantKey{Mchid: "1900000001", Kind: tradeunit.KeyOrder, Value: "readme-0001"}
	if got, want := k.Bucket(), 1526; got != want {
		t.Fatalf("bucket of %s: got %d, want %d (the hash changed: stored entries would be in the wrong buckets)", k, got, want)
	}
	seen := map[int]bool{}
	for i := 0; i < 10000; i++ {
		seen[tradeunit.MerchantKey{Mchid: "1900000001", Kind: tradeunit.KeyOrder, Value: "k-" + strconv.Itoa(i)}.Bucket()] = true
	}
	if len(seen) < tradeunit.DirectoryBuckets*8/10 {
		t.Errorf("10000 keys fell in %d buckets of %d: the hash does not spread", len(seen), tradeunit.DirectoryBuckets)
	}
}

func TestSplitBuckets(t *testing.T) {
	for _, n := range []int{1, 2, 3, 7, 4096} {
		ids := make([]ShardID, n)
		for i := range ids {
			ids[i] = ShardID(i + 1)
		}
		d := SplitBuckets(ids)
		held := map[ShardID]int{}
		for i := range d.Shards {
			d.Shards[i].LogicAddrs = []string{"h:" + strconv.Itoa(i+1)}
			for _, r := range d.Shards[i].Buckets {
				held[d.Shards[i].Shard] += r.To - r.From + 1
			}
		}
		if err := (&Table{Directory: d}).Validate(); err != nil {
			t.Fatalf("%d shards: %v", n, err)
		}
		lo, hi := tradeunit.DirectoryBuckets, 0
		for _, c := range held {
			lo, hi = min(lo, c), max(hi, c)
		}
		if len(held) != n || hi-lo > 1 {
			t.Errorf("%d shards hold %d..%d buckets each (%d shards), want an even split", n, lo, hi, len(held))
		}
	}
}
