package dirtest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"tradeunit"
)

func compareKeys(a, b tradeunit.MerchantKey) int {
	return strings.Compare(a.Mchid+"\x00"+string(a.Kind)+"\x00"+a.Value, b.Mchid+"\x00"+string(b.Kind)+"\x00"+b.Value)
}

func sortKeys(es []*tradeunit.DirectoryEntry) {
	slices.SortFunc(es, func(a, b *tradeunit.DirectoryEntry) int { return compareKeys(a.Key, b.Key) })
}

// keysInBucket returns n fresh keys of mchid that hash into one bucket.
func keysInBucket(mchid string, n int) (int, []tradeunit.MerchantKey) {
	byBucket := map[int][]tradeunit.MerchantKey{}
	for {
		k := key(mchid)
		b := k.Bucket()
		byBucket[b] = append(byBucket[b], k)
		if len(byBucket[b]) == n {
			return b, byBucket[b]
		}
	}
}

func testBuckets(t *testing.T, open Opener) {
	s := open(t)
	bs, ok := s.(Buckets)
	if !ok {
		t.Skipf("%T has no bucket listing", s)
	}
	ctx := context.Background()
	bucket, keys := keysInBucket(mchA, 7)
	var want []*tradeunit.DirectoryEntry
	for i, k := range keys {
		e := pending(k, 1)
		if i%2 == 0 {
			e = committed(e, "1000010000000000000000000001")
			e.Version = 1 // a backfilled entry: committed at once
		}
		want = append(want, e)
	}
	other := pending(key(mchA), 1)
	for other.Key.Bucket() == bucket {
		other = pending(key(mchA), 1)
	}
	mustPut(t, s, append(want, other)...)
	sortKeys(want)
	var got []*tradeunit.DirectoryEntry
	after := tradeunit.MerchantKey{}
	for {
		page, err := bs.EntriesInBucket(ctx, bucket, after, 3)
		if err != nil {
			t.Fatalf("EntriesInBucket: %v", err)
		}
		if len(page) > 3 {
			t.Fatalf("page of %d, limit 3", len(page))
		}
		if len(page) == 0 {
			break
		}
		got = append(got, page...)
		after = page[len(page)-1].Key
	}
	if len(got) != len(want) {
		t.Fatalf("bucket %d listed %d entries, want %d", bucket, len(got), len(want))
	}
	for i := range want {
		sameEntry(t, fmt.Sprintf("bucket entry %d", i), got[i], want[i])
	}
	for b, n := range map[int]int64{bucket: 7, other.Key.Bucket(): 1} {
		if got, err := bs.CountBucket(ctx, b); err != nil || got != n {
			t.Fatalf("CountBucket(%d) = %d, %v; want %d", b, got, err, n)
		}
	}
	empty := (bucket + 1) % tradeunit.DirectoryBuckets
	if empty == other.Key.Bucket() {
		empty = (empty + 1) % tradeunit.DirectoryBuckets
	}
	if got, err := bs.CountBucket(ctx, empty); err != nil || got != 0 {
		t.Fatalf("CountBucket of an empty bucket = %d, %v", got, err)
	}
	for _, b := range []int{-1, tradeunit.DirectoryBuckets} {
		if _, err := bs.CountBucket(ctx, b); !tradeunit.IsCode(err, tradeunit.CodeParamError) {
			t.Fatalf("CountBucket(%d): got %v, want PARAM_ERROR", b, err)
		}
		if _, err := bs.EntriesInBucket(ctx, b, tradeunit.MerchantKey{}, 1); !tradeunit.IsCode(err, tradeunit.CodeParamError) {
			t.Fatalf("EntriesInBucket(%d): got %v, want PARAM_ERROR", b, err)
		}
	}
}

func testRoundTrip(t *testing.T, open Opener) {
	s := open(t)
	shanghai := time.FixedZone("CST", 8*3600)
	e := pending(key(mchA), tradeunit.MaxUnitID)
	e.Created = time.Date(2026, 12, 2, 10, 11, 12, 123456789, shanghai)
	e.Updated = e.Created.Add(time.Nanosecond * 999)
	e.Attempt.ID = 1<<64 - 1 // ids are random uint64: the high bit must survive
	e.Abandoned = []tradeunit.Attempt{{Unit: 1, ID: 1 << 63}, {Unit: 2, ID: 1}}
	mustPut(t, s, e)
	got, err := s.Entry(context.Background(), e.Key)
	if err != nil {
		t.Fatal(err)
	}
	sameEntry(t, "round trip", got, e)
	// 123456789 ns and 123457788 ns, truncated to microseconds.
	if got.Created.Nanosecond() != 123456000 || got.Updated.Nanosecond() != 123457000 {
		t.Fatalf("times: %v, %v; want them truncated to microseconds", got.Created, got.Updated)
	}
	// Zero times stay zero.
	z := pending(key(mchA), 1)
	z.Created, z.Updated = time.Time{}, time.Time{}
	mustPut(t, s, z)
	if got, err := s.Entry(context.Background(), z.Key); err != nil || !got.Created.IsZero() || !got.Updated.IsZero() {
		t.Fatalf("zero times: got %+v, %v", got, err)
	}
}

func testReopen(t *testing.T, open Opener) {
	e := pending(key(mchA), 1)
	mustPut(t, open(t), e)
	stored(t, open(t), e)
}
