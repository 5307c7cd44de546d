package selection

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"tradeunit"
)

// eachScan runs f as a subtest of the scan with a lower bound.
func eachScan(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	t.Run("scan", f)
}

// scansFor runs f with each scan a plan of that many units can take: the
// plain loop of a small one, or eachScan.
func scansFor(t *testing.T, units int, f func(t *testing.T)) {
	t.Helper()
	if units < scanMin {
		f(t)
		return
	}
	eachScan(t, f)
}

// testClass returns a class of the given units with their real unitMix.
func testClass(units ...tradeunit.UnitID) *class {
	var t tier
	for _, u := range units {
		t.add(u, 1)
	}
	t.finish()
	return &t.classes[0]
}

func unitRange(from, n int) []tradeunit.UnitID {
	us := make([]tradeunit.UnitID, n)
	for i := range us {
		us[i] = tradeunit.UnitID(from + i)
	}
	return us
}

// wantTop is the class's units in the key's order the slow way: by the top
// bits of their hashes, ties by lower unit.
func wantTop(c *class, k keyHash) []ranked {
	all := make([]ranked, len(c.units))
	for i, u := range c.units {
		all[i] = ranked{unit: u, h: k.unit(c.mix[i]) >> rendezvousShift}
	}
	slices.SortStableFunc(all, func(a, b ranked) int {
		switch {
		case a.h > b.h:
			return -1
		case a.h < b.h:
			return 1
		}
		return 0
	})
	return all
}

// TestTopByHash: every way topByHash scans a class (a plain loop for a
// small one; the scan with a lower bound for a larger one,
// with a whole number of blocks or not) finds the units a sort finds.
func TestTopByHash(t *testing.T) {
	eachScan(t, func(t *testing.T) {
		for _, size := range []int{1, 5, 63, 64, 65, 71, 100, 257, 1000} {
			c := testClass(unitRange(7, size)...)
			for key := range 300 {
				k := rendezvousKey(hashKey(fmt.Sprint("1900000001/order-", key)))
				order := wantTop(c, k)
				for n := 1; n <= MaxPick; n++ {
					var out [MaxPick]ranked
					got := out[:c.topByHash(k, n, 0, &out)]
					if want := order[:min(n, len(order))]; !slices.Equal(got, want) {
						t.Fatalf("%d units, n=%d, key %d: got %v, want %v", size, n, key, got, want)
					}
				}
			}
		}
	})
}

// TestTopByHashTies: units with equal hashes (here, equal unitMix values)
// come lowest unit first in every scan, including the hash 2^64-1, where the
// bar cannot rise above it.
func TestTopByHashTies(t *testing.T) {
	k := rendezvousKey(hashKey("1900000001/tie"))
	// b is odd, so x = (2^64-1) × b⁻¹ has (x) × b = 2^64-1, and mix = a XOR x.
	inv := k.b // Newton: each step doubles the correct low bits of b⁻¹
	for range 6 {
		inv *= 2 - k.b*inv
	}
	top := k.a ^ (^uint64(0) * inv)
	if k.unit(top) != ^uint64(0) {
		t.Fatalf("mix for the largest hash: %x", k.unit(top))
	}
	eachScan(t, func(t *testing.T) {
		for _, size := range []int{20, 100, 300} {
			for _, same := range []uint64{top, 12345} {
				c := testClass(unitRange(1, size)...)
				for _, i := range []int{3, 17, size/2 + 1, size - 2, size - 1} { // a few units share one mix
					c.mix[i] = same
				}
				order := wantTop(c, k)
				for n := 1; n <= MaxPick; n++ {
					var out [MaxPick]ranked
					got := out[:c.topByHash(k, n, 0, &out)]
					if want := order[:n]; !slices.Equal(got, want) {
						t.Fatalf("%d units sharing %x, n=%d: got %v, want %v", size, same, n, got, want)
					}
				}
			}
		}
	})
}

// TestLowerBound: the bar a scan starts from never exceeds the n-th best
// hash (top bits), so it never skips one of the best.
func TestLowerBound(t *testing.T) {
	eachScan(t, func(t *testing.T) {
		for _, size := range []int{64, 100, 513, 1000} {
			c := testClass(unitRange(1, size)...)
			for key := range 500 {
				k := rendezvousKey(uint64(key) * 0x9e3779b97f4a7c15)
				order := wantTop(c, k)
				for n := 1; n <= MaxPick; n++ {
					if bar := c.lowerBound(k, n); bar>>rendezvousShift > order[n-1].h {
						t.Fatalf("%d units, n=%d, key %d: bar %x above the n-th best %x", size, n, key, bar>>rendezvousShift, order[n-1].h)
					}
				}
			}
		}
	})
}

// TestScoreFloor: a unit below the floor for a score scores less than it,
// over weights and scores of every magnitude.
func TestScoreFloor(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 200000 {
		w0, w := math.Ldexp(0.5+rng.Float64(), rng.IntN(12)-6), math.Ldexp(0.5+rng.Float64(), rng.IntN(12)-6)
		h0 := rng.Uint64() >> rendezvousShift
		if rng.IntN(2) == 0 {
			h0 = 1<<rendezvousBits - 1 - h0>>rng.IntN(40) // close to 1
		}
		s := rendezvousScore(w0, h0)
		floor := scoreFloor(w, s)
		if floor >= 1<<rendezvousBits {
			t.Fatalf("floor %x for weight %v, score %v: not a hash", floor, w, s)
		}
		if floor > 0 && rendezvousScore(w, floor-1) >= s {
			t.Fatalf("weight %v, score %v: a hash below the floor %x scores %v", w, s, floor, rendezvousScore(w, floor-1))
		}
	}
}
