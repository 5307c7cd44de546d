package selection

import (
	"sync"
	"time"

	"tradeunit"
)

// Balancer counts each unit's recent requests through this proxy: creates
// and every later call (pay, query, close, refund). Build turns the counts
// into each unit's balancing factor (see the package doc): a unit that got
// fewer than half the mean requests of its peers recently — a newly added
// unit, or one whose orders are quiet — takes more new orders until the
// counts even out, and a hot one takes fewer.
//
// Counts are kept in ten buckets spanning the window, so old history ages
// out a bucket at a time.
type Balancer struct {
	now   func() time.Time
	width int64 // bucket width, nanoseconds

	mu      sync.Mutex
	buckets [balanceBuckets]map[tradeunit.UnitID]uint32
	stamps  [balanceBuckets]int64 // which bucket number each bucket counts
}

const balanceBuckets = 10

// DefaultBalanceWindow is the history of request counts the proxy weighs
// unless configured otherwise.
const DefaultBalanceWindow = 10 * time.Second

// NewBalancer returns a Balancer over the last window of requests (window
// must be positive), using now as its clock (time.Now if nil).
func NewBalancer(now func() time.Time, window time.Duration) *Balancer {
	if now == nil {
		now = time.Now
	}
	b := &Balancer{now: now, width: max(int64(window/balanceBuckets), 1)}
	for i := range b.buckets {
		b.buckets[i] = map[tradeunit.UnitID]uint32{}
		b.stamps[i] = -1
	}
	return b
}

// Window returns the span of history the Balancer counts.
func (b *Balancer) Window() time.Duration { return time.Duration(b.width * balanceBuckets) }

// Record counts one request to u.
func (b *Balancer) Record(u tradeunit.UnitID) {
	n := b.now().UnixNano() / b.width
	i := n % balanceBuckets
	b.mu.Lock()
	if b.stamps[i] != n {
		clear(b.buckets[i])
		b.stamps[i] = n
	}
	b.buckets[i][u]++
	b.mu.Unlock()
}

// Recent returns u's request count over the window.
func (b *Balancer) Recent(u tradeunit.UnitID) uint64 {
	n := b.now().UnixNano() / b.width
	b.mu.Lock()
	defer b.mu.Unlock()
	var sum uint64
	for i := range b.buckets {
		if n-b.stamps[i] < balanceBuckets {
			sum += uint64(b.buckets[i][u])
		}
	}
	return sum
}

// Counts returns every unit's request count over the window, for Build.
// Units without a request are absent.
func (b *Balancer) Counts() map[tradeunit.UnitID]uint64 {
	n := b.now().UnixNano() / b.width
	out := map[tradeunit.UnitID]uint64{}
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := range b.buckets {
		if n-b.stamps[i] < balanceBuckets {
			for u, c := range b.buckets[i] {
				out[u] += uint64(c)
			}
		}
	}
	return out
}
