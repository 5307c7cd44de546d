package selection

import (
	"sync"
	"time"

	"tradeunit"
)

// Balancer counts each unit's recent requests through this proxy and turns
// them into a weight factor for new orders: a unit that got fewer than half
// the mean share recently (a newly added or lightly loaded unit) counts
// double, one that got more than twice the mean counts half, and every other
// unit counts once.
//
// The factor is coarse on purpose. While the units are balanced every factor
// is 1 and Rank's order depends on the key alone, which keeps a repeated
// create on the unit that holds the first one. Only an imbalance bigger than
// 2x changes the ranking, and then only until it evens out.
type Balancer struct {
	now func() time.Time

	mu      sync.Mutex
	buckets [balanceBuckets]map[tradeunit.UnitID]uint32
	stamps  [balanceBuckets]int64 // which second each bucket counts
}

const balanceBuckets = 10 // seconds of history

// NewBalancer returns a Balancer using now as its clock (time.Now if nil).
func NewBalancer(now func() time.Time) *Balancer {
	if now == nil {
		now = time.Now
	}
	b := &Balancer{now: now}
	for i := range b.buckets {
		b.buckets[i] = map[tradeunit.UnitID]uint32{}
	}
	return b
}

// Record counts one request to u.
func (b *Balancer) Record(u tradeunit.UnitID) {
	sec := b.now().Unix()
	i := sec % balanceBuckets
	b.mu.Lock()
	if b.stamps[i] != sec {
		clear(b.buckets[i])
		b.stamps[i] = sec
	}
	b.buckets[i][u]++
	b.mu.Unlock()
}

// Recent returns u's request count over the last balanceBuckets seconds.
func (b *Balancer) Recent(u tradeunit.UnitID) uint64 {
	sec := b.now().Unix()
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.recentLocked(u, sec)
}

func (b *Balancer) recentLocked(u tradeunit.UnitID, sec int64) uint64 {
	var n uint64
	for i := range b.buckets {
		if sec-b.stamps[i] < balanceBuckets {
			n += uint64(b.buckets[i][u])
		}
	}
	return n
}

// Weigh multiplies each candidate's weight by its balancing factor, in place.
func (b *Balancer) Weigh(cands []Candidate) {
	if len(cands) < 2 {
		return
	}
	sec := b.now().Unix()
	var counts [64]uint64
	recent := counts[:0]
	var total uint64
	b.mu.Lock()
	for _, c := range cands {
		n := b.recentLocked(c.Unit, sec)
		recent = append(recent, n)
		total += n
	}
	b.mu.Unlock()
	// Too little traffic to judge: leave the static weights alone.
	if total < uint64(10*len(cands)) {
		return
	}
	mean := float64(total) / float64(len(cands))
	for i := range cands {
		switch n := float64(recent[i]); {
		case n < mean/2:
			cands[i].Weight *= 2
		case n > mean*2:
			cands[i].Weight /= 2
		}
	}
}
