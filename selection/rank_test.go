package selection

import (
	"fmt"
	"math"
	"testing"
	"time"

	"tradeunit"
)

func cands(weights ...float64) []Candidate {
	out := make([]Candidate, len(weights))
	for i, w := range weights {
		out[i] = Candidate{Unit: tradeunit.UnitID(i + 1), Weight: w}
	}
	return out
}

func TestRankIsDeterministicPermutation(t *testing.T) {
	c := cands(1, 1, 1, 1)
	a := Rank(nil, "1900000001/order-1", c)
	b := Rank(nil, "1900000001/order-1", []Candidate{c[3], c[1], c[0], c[2]})
	if len(a) != 4 {
		t.Fatalf("got %d units, want 4", len(a))
	}
	seen := map[tradeunit.UnitID]bool{}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("ranking depends on candidate order: %v vs %v", a, b)
		}
		seen[a[i]] = true
	}
	if len(seen) != 4 {
		t.Fatalf("ranking %v is not a permutation", a)
	}
}

func TestRankSharesFollowWeights(t *testing.T) {
	tests := []struct {
		weights []float64
	}{
		{[]float64{1, 1, 1, 1}},
		{[]float64{1, 2, 1}},
		{[]float64{3, 1}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.weights), func(t *testing.T) {
			c := cands(tt.weights...)
			const n = 40000
			first := map[tradeunit.UnitID]int{}
			var buf []tradeunit.UnitID
			for i := 0; i < n; i++ {
				buf = Rank(buf, fmt.Sprintf("m/%d", i), c)
				first[buf[0]]++
			}
			var sum float64
			for _, w := range tt.weights {
				sum += w
			}
			for i, w := range tt.weights {
				got := float64(first[tradeunit.UnitID(i+1)]) / n
				if want := w / sum; math.Abs(got-want) > 0.02 {
					t.Errorf("unit %d first for %.3f of keys, want %.3f", i+1, got, want)
				}
			}
		})
	}
}

func TestRankRemovingUnitMovesOnlyItsKeys(t *testing.T) {
	all := cands(1, 1, 1, 1)
	without3 := []Candidate{all[0], all[1], all[3]}
	for i := 0; i < 5000; i++ {
		key := fmt.Sprintf("k%d", i)
		before := Rank(nil, key, all)[0]
		after := Rank(nil, key, without3)[0]
		if before != 3 && before != after {
			t.Fatalf("key %s moved from unit %d to %d though unit 3 was removed", key, before, after)
		}
	}
}

func TestRankSkipsNonPositiveWeights(t *testing.T) {
	got := Rank(nil, "k", []Candidate{{1, 0}, {2, 1}, {3, -1}, {4, math.NaN()}})
	if len(got) != 1 || got[0] != 2 {
		t.Fatalf("got %v, want [2]", got)
	}
}

func TestBalancerCountsAWindow(t *testing.T) {
	now := time.Unix(1000, 0)
	b := NewBalancer(func() time.Time { return now }, 2*time.Second)
	if got := b.Window(); got != 2*time.Second {
		t.Fatalf("window: got %v, want 2s", got)
	}
	for i := 0; i < 100; i++ {
		b.Record(1)
		b.Record(2)
	}
	now = now.Add(time.Second)
	b.Record(2)
	if got := b.Counts(); got[1] != 100 || got[2] != 101 || len(got) != 2 {
		t.Fatalf("counts: got %v, want map[1:100 2:101]", got)
	}
	// History older than the window ages out a bucket at a time.
	now = now.Add(1500 * time.Millisecond)
	if got := b.Recent(1); got != 0 {
		t.Fatalf("unit 1 after 2.5s: got %d, want 0", got)
	}
	if got := b.Recent(2); got != 1 {
		t.Fatalf("unit 2 after 2.5s: got %d, want 1 (its last request)", got)
	}
}

func TestHashKey2(t *testing.T) {
	for _, k := range [][2]string{{"", ""}, {"1900000001", "order-1"}, {"a/b", "c"}} {
		if got, want := hashKey2(k[0], k[1]), hashKey(k[0]+"/"+k[1]); got != want {
			t.Errorf("hashKey2(%q, %q) = %x, want hashKey of the joined key %x", k[0], k[1], got, want)
		}
	}
}
