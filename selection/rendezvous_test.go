package selection

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"tradeunit"
	"tradeunit/routing"
)

// The tests of this file check what the rendezvous hash (keyHash.unit)
// must give the ranking, through Plan.Pick and each scan a plan of that size
// takes (scansFor): each unit is first for its weight's share of keys, the
// hashes of different units are independent (any two or three units come
// first in any order as often as their weights say), and removing a unit
// moves only the keys it had, spread over the others by weight.

const distributionKeys = 200000

// weightedPlan builds a plan of healthy units 1..len(weights) of the "normal"
// partition with the given routing weights (and nothing to balance).
func weightedPlan(t testing.TB, weights []float64, down ...tradeunit.UnitID) *Plan {
	units := make([]routing.Unit, len(weights))
	for i, w := range weights {
		units[i] = hot(tradeunit.UnitID(i+1), "normal")
		units[i].Weight = w
		units[i].Available = !slices.Contains(down, units[i].ID)
	}
	return Build(Inputs{Table: table(t, nil, units...), Now: now})
}

// balancedWeights are n weights as balancing and speed leave them: mostly 1,
// a tenth 2, a tenth ½, a twentieth ¼.
func balancedWeights(n int) []float64 {
	w := make([]float64, n)
	for i := range w {
		w[i] = []float64{1, 1, 1, 1, 1, 1, 1, 2, 0.5, 1, 1, 1, 1, 1, 1, 1, 2, 0.5, 0.25, 0.5}[i%20]
	}
	return w
}

func orderNo(i int) string { return fmt.Sprintf("order-%08d", i) }

// chiSquare returns the statistic of observed counts against expected ones,
// and the bound it stays under unless the counts are not from the expected
// distribution: the mean (the degrees of freedom) plus 6 standard deviations.
func chiSquare(observed []int, expected []float64) (stat, bound float64) {
	for i, o := range observed {
		d := float64(o) - expected[i]
		stat += d * d / expected[i]
	}
	dof := float64(len(observed) - 1)
	return stat, dof + 6*math.Sqrt(2*dof)
}

// TestRendezvousSharesFollowWeights: over 200,000 keys, each unit is first
// for its weight's share of them, within 3% of that share, with equal and
// with mixed weights; and on a plan of 1,000 units, the counts per unit pass
// a chi-square test and each weight's total share is within 2%.
func TestRendezvousSharesFollowWeights(t *testing.T) {
	tests := []struct {
		name      string
		weights   []float64
		tolerance float64 // of each unit's share; 0: chi-square only
	}{
		{"10 equal", []float64{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, 0.03},
		{"10 mixed", []float64{1, 1, 2, 2, 0.5, 1, 3, 1, 1, 0.5}, 0.03},
		{"1000 balanced", balancedWeights(1000), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			scansFor(t, len(tt.weights), func(t *testing.T) {
				plan := weightedPlan(t, tt.weights)
				first := make([]int, len(tt.weights))
				var buf [MaxPick]tradeunit.UnitID
				for i := range distributionKeys {
					got, err := plan.Pick(buf[:0], "1900000001", orderNo(i), 1)
					if err != nil {
						t.Fatal(err)
					}
					first[got[0]-1]++
				}
				var total float64
				for _, w := range tt.weights {
					total += w
				}
				expected := make([]float64, len(tt.weights))
				byWeight, wantByWeight := map[float64]int{}, map[float64]float64{}
				for i, w := range tt.weights {
					expected[i] = distributionKeys * w / total
					byWeight[w] += first[i]
					wantByWeight[w] += expected[i]
					if got := float64(first[i]); tt.tolerance > 0 && math.Abs(got-expected[i]) > tt.tolerance*expected[i] {
						t.Errorf("unit %d (weight %v) first for %.0f keys, want %.0f ± %.0f%%", i+1, w, got, expected[i], 100*tt.tolerance)
					}
				}
				stat, bound := chiSquare(first, expected)
				if stat > bound {
					t.Errorf("first choices per unit: chi-square %.0f over %.0f", stat, bound)
				}
				worst := 0.0
				for i := range first {
					worst = max(worst, math.Abs(float64(first[i])/expected[i]-1))
				}
				t.Logf("chi-square %.1f (%d units, bound %.0f); farthest unit %.2f%% from its share", stat, len(first), bound, 100*worst)
				for w, got := range byWeight {
					if math.Abs(float64(got)-wantByWeight[w]) > 0.02*wantByWeight[w] {
						t.Errorf("units of weight %v first for %d keys, want %.0f ± 2%%", w, got, wantByWeight[w])
					}
				}
			})
		})
	}
}

// TestRendezvousHashesAreIndependent: the hashes of different units for a
// key are independent, so the first two choices fall on every ordered pair
// of units, and the first three on every ordered triple, as often as
// weighted rendezvous says (equal weights: all alike): chi-square tests over
// 200,000 keys, and each pair of 8 equal units within 8% of 1/56.
func TestRendezvousHashesAreIndependent(t *testing.T) {
	tests := []struct {
		name    string
		weights []float64
		depth   int // 2: pairs, 3: triples
	}{
		{"pairs of 8 equal", []float64{1, 1, 1, 1, 1, 1, 1, 1}, 2},
		{"pairs of 8 mixed", []float64{1, 2, 1, 0.5, 1, 1, 2, 0.5}, 2},
		{"triples of 6 equal", []float64{1, 1, 1, 1, 1, 1}, 3},
		{"triples of 6 mixed", []float64{1, 2, 1, 0.5, 1, 2}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			scansFor(t, len(tt.weights), func(t *testing.T) {
				plan := weightedPlan(t, tt.weights)
				n := len(tt.weights)
				cell := func(order []tradeunit.UnitID) int { // the index of an ordered tuple of units
					c := 0
					for _, u := range order {
						c = c*n + int(u-1)
					}
					return c
				}
				counts := make([]int, int(math.Pow(float64(n), float64(tt.depth))))
				var buf [MaxPick]tradeunit.UnitID
				for i := range distributionKeys {
					got, err := plan.Pick(buf[:0], "1900000002", orderNo(i), tt.depth)
					if err != nil {
						t.Fatal(err)
					}
					counts[cell(got)]++
				}
				// P(order) = Π w_i / (the weights not yet chosen): each next
				// choice is by weight among the rest.
				var observed []int
				var expected []float64
				var visit func(prefix []tradeunit.UnitID, p, left float64)
				visit = func(prefix []tradeunit.UnitID, p, left float64) {
					if len(prefix) == tt.depth {
						observed = append(observed, counts[cell(prefix)])
						expected = append(expected, p*distributionKeys)
						return
					}
					for u := tradeunit.UnitID(1); int(u) <= n; u++ {
						if !slices.Contains(prefix, u) {
							w := tt.weights[u-1]
							visit(append(prefix, u), p*w/left, left-w)
						}
					}
				}
				var total float64
				for _, w := range tt.weights {
					total += w
				}
				visit(nil, 1, total)
				stat, bound := chiSquare(observed, expected)
				if stat > bound {
					t.Errorf("chi-square %.0f over %.0f for %d ordered %d-tuples", stat, bound, len(observed), tt.depth)
				}
				t.Logf("chi-square %.1f for %d ordered %d-tuples (bound %.0f)", stat, len(observed), tt.depth, bound)
				if tt.name == "pairs of 8 equal" {
					for i, o := range observed {
						if math.Abs(float64(o)-expected[i]) > 0.08*expected[i] {
							t.Errorf("an ordered pair came first %d times, want %.0f ± 8%%", o, expected[i])
						}
					}
				}
			})
		})
	}
}

// TestRendezvousRemovingUnitMovesOnlyItsKeys: taking a unit out of a plan
// (of 10 or 1,000 units, mixed weights) changes nothing for a key that did
// not rank it in its first 8, and only drops it from the order of one that
// did; the keys it was first for spread over the others by weight. So
// adding it back moves keys only to it.
func TestRendezvousRemovingUnitMovesOnlyItsKeys(t *testing.T) {
	tests := []struct {
		weights []float64
		remove  tradeunit.UnitID
		keys    int
	}{
		{[]float64{1, 1, 2, 2, 0.5, 1, 3, 1, 1, 0.5}, 7, 100000},
		{balancedWeights(1000), 501, 30000},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(len(tt.weights), " units"), func(t *testing.T) {
			scansFor(t, len(tt.weights), func(t *testing.T) {
				before := weightedPlan(t, tt.weights)
				after := weightedPlan(t, tt.weights, tt.remove)
				moved := make([]int, len(tt.weights))
				var had int
				for i := range tt.keys {
					was := pick(t, before, "1900000003", orderNo(i), MaxPick)
					is := pick(t, after, "1900000003", orderNo(i), MaxPick)
					rest := slices.DeleteFunc(slices.Clone(was), func(u tradeunit.UnitID) bool { return u == tt.remove })
					if len(rest) == len(was) && !slices.Equal(is, was) || !slices.Equal(is[:len(rest)], rest) {
						t.Fatalf("key %s: %v with unit %d, %v without it", orderNo(i), was, tt.remove, is)
					}
					if was[0] == tt.remove {
						had++
						moved[is[0]-1]++
					}
				}
				t.Logf("unit %d was first for %d of %d keys; no other key changed", tt.remove, had, tt.keys)
				if len(tt.weights) > 10 {
					return // too few keys per unit to judge where they went
				}
				var total float64
				for i, w := range tt.weights {
					if tradeunit.UnitID(i+1) != tt.remove {
						total += w
					}
				}
				for i, w := range tt.weights {
					if tradeunit.UnitID(i+1) == tt.remove {
						continue
					}
					if want := float64(had) * w / total; math.Abs(float64(moved[i])-want) > 0.12*want {
						t.Errorf("unit %d (weight %v) took %d of unit %d's %d keys, want %.0f ± 12%%", i+1, w, moved[i], tt.remove, had, want)
					}
				}
			})
		})
	}
}

// TestPickIsDeterministic: plans built apart from the same inputs (as every
// proxy builds its own), with the units listed in another order, rank every
// key alike.
func TestPickIsDeterministic(t *testing.T) {
	weights := balancedWeights(300)
	units := make([]routing.Unit, len(weights))
	for i, w := range weights {
		units[i] = hot(tradeunit.UnitID(i+1), "normal")
		units[i].Weight = w
	}
	reversed := slices.Clone(units)
	slices.Reverse(reversed)
	a := Build(Inputs{Table: table(t, nil, units...), Now: now})
	eachScan(t, func(t *testing.T) {
		b := Build(Inputs{Table: table(t, nil, reversed...), Now: now})
		for i := range 20000 {
			if x, y := pick(t, a, "1900000004", orderNo(i), MaxPick), pick(t, b, "1900000004", orderNo(i), MaxPick); !slices.Equal(x, y) {
				t.Fatalf("key %s: %v and %v", orderNo(i), x, y)
			}
		}
	})
}
