package selection

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"tradeunit"
	"tradeunit/routing"
)

// referenceTop is the class's best n units for the key, the straightforward
// way: every unit's hash, sorted by its top bits, ties by lower unit, less
// those below floor.
func referenceTop(c *class, k keyHash, n int, floor uint64) []ranked {
	var all []ranked
	for i, u := range c.units {
		if h := k.unit(c.mix[i]) >> rendezvousShift; h >= floor {
			all = append(all, ranked{unit: u, h: h})
		}
	}
	slices.SortFunc(all, func(a, b ranked) int {
		switch {
		case a.h > b.h:
			return -1
		case a.h < b.h:
			return 1
		}
		return int(a.unit) - int(b.unit)
	})
	return all[:min(n, len(all))]
}

// TestTopByHashMatchesReference: topByHash finds what referenceTop finds
// for random classes (sizes on both sides of every threshold of the scan,
// random ids, some units sharing a hash) and random floors.
func TestTopByHashMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	sizes := []int{1, 7, 8, 9, 63, 64, 65, 191, 192, 193, 200, 255, 257, 1000, 1001, 1007, packedUnits, packedUnits + 1, packedUnits + 13}
	for _, size := range sizes {
		ids := map[tradeunit.UnitID]bool{}
		for len(ids) < size {
			ids[tradeunit.UnitID(1+rng.IntN(4*size+10))] = true
		}
		units := make([]tradeunit.UnitID, 0, size)
		for u := range ids {
			units = append(units, u)
		}
		slices.Sort(units)
		c := testClass(units...)
		keys := 400
		if size > 2000 {
			keys = 40
		}
		for key := range keys {
			k := rendezvousKey(rng.Uint64())
			if key%10 == 9 && size > 1 { // a few units share the best unit's mix
				best := referenceTop(c, k, 1, 0)[0].unit
				i, _ := slices.BinarySearch(c.units, best)
				for range 3 {
					c.mix[rng.IntN(size)] = c.mix[i]
				}
			}
			n := 1 + rng.IntN(MaxPick)
			var floor uint64
			if key%3 == 0 { // a floor near the top hashes, as another class sets
				all := referenceTop(c, k, MaxPick+2, 0)
				floor = all[rng.IntN(len(all))].h + uint64(rng.IntN(3)) - 1
			}
			want := referenceTop(c, k, n, floor)
			var out [MaxPick]ranked
			got := out[:c.topByHash(k, n, floor, &out)]
			// Units below the floor may be left out, never others.
			if len(got) < len(want) || !slices.Equal(got[:len(want)], want) {
				t.Fatalf("%d units, key %d, n=%d, floor %x: got %v, want %v", size, key, n, floor, got, want)
			}
			for _, r := range got[len(want):] {
				if r.h >= floor {
					t.Fatalf("%d units, key %d, n=%d, floor %x: got %v, want %v", size, key, n, floor, got, want)
				}
			}
		}
	}
}

// TestPickMatchesRankRandom: Pick returns Rank's first units for random
// unit sets (random ids, so adding or removing units is covered), random
// weight classes and random keys.
func TestPickMatchesRankRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for round := range 60 {
		size := 1 + rng.IntN(1500)
		if round%20 == 19 {
			size = packedUnits + rng.IntN(200) // one large class
		}
		classes := []float64{1, 2, 0.5, 0.25, 3, 1.5}[:1+rng.IntN(6)]
		allDifferent := round%7 == 6
		ids := map[tradeunit.UnitID]bool{}
		for len(ids) < size {
			ids[tradeunit.UnitID(1+rng.IntN(3*size+10))] = true
		}
		var units []routing.Unit
		for id := range ids {
			u := hot(id, "normal")
			u.Weight = classes[rng.IntN(len(classes))]
			if allDifferent {
				u.Weight = 0.5 + rng.Float64()
			}
			units = append(units, u)
		}
		tbl := table(t, nil, units...)
		var cands []Candidate
		for _, u := range tbl.Units {
			cands = append(cands, Candidate{Unit: u.ID, Weight: u.Weight})
		}
		plan := Build(Inputs{Table: tbl, Now: now})
		keys := 100
		if size > 2000 {
			keys = 20
		}
		for range keys {
			mchid, out := fmt.Sprint(1900000000+rng.IntN(1000)), fmt.Sprintf("o-%x", rng.Uint64())
			want := Rank(nil, mchid+"/"+out, cands)
			attempts := 1 + rng.IntN(MaxPick)
			if got := pick(t, plan, mchid, out, attempts); !slices.Equal(got, want[:min(len(want), attempts)]) {
				t.Fatalf("round %d, %d units, %d classes, key %s/%s, %d attempts: Pick %v, Rank %v",
					round, size, len(classes), mchid, out, attempts, got, want[:min(len(want), attempts)])
			}
		}
	}
}
