package selection

import (
	"cmp"
	"math"
	"slices"

	"tradeunit"
)

// tier is a set of units ranked together, grouped into classes of equal
// weight: within a class the rendezvous score grows with the hash, so a
// class is ranked by comparing integer hashes, and logarithms are taken only
// for each class's best few.
type tier struct {
	classes []class // the largest share of the tier's weight first
}

type class struct {
	weight float64
	units  []tradeunit.UnitID // ascending
	mix    []uint64           // unitMix of each unit, what the scan reads (scan.go)
}

// add puts a unit in its weight's class. Build adds units in id order, so
// each class stays sorted.
func (t *tier) add(u tradeunit.UnitID, w float64) {
	if w <= 0 || math.IsNaN(w) {
		return
	}
	for i := range t.classes {
		if c := &t.classes[i]; c.weight == w {
			c.units = append(c.units, u)
			c.mix = append(c.mix, unitMix(u))
			return
		}
	}
	t.classes = append(t.classes, class{weight: w, units: []tradeunit.UnitID{u}, mix: []uint64{unitMix(u)}})
}

// finish readies the tier for top once every unit is added: it puts the
// classes with the most weight first, whose best units set the bar
// (scoreFloor) that lets top skip most of the others (the order changes no
// ranking).
func (t *tier) finish() {
	slices.SortFunc(t.classes, func(a, b class) int {
		return cmp.Or(cmp.Compare(b.weight*float64(len(b.units)), a.weight*float64(len(a.units))), cmp.Compare(b.weight, a.weight))
	})
}

// size returns how many units the tier holds.
func (t *tier) size() int {
	n := 0
	for _, c := range t.classes {
		n += len(c.units)
	}
	return n
}

// ranked is a unit with its hash and score for one key.
type ranked struct {
	unit  tradeunit.UnitID
	h     uint64 // top rendezvousBits of the rendezvous hash
	score float64
}

// top appends the tier's best n units for the key, in Rank's order.
func (t *tier) top(dst []tradeunit.UnitID, k keyHash, n int) []tradeunit.UnitID {
	if n <= 0 || len(t.classes) == 0 {
		return dst
	}
	var best, buf [MaxPick]ranked
	if len(t.classes) == 1 {
		m := t.classes[0].topByHash(k, n, 0, &best)
		for _, r := range best[:m] {
			dst = append(dst, r.unit)
		}
		return dst
	}
	nb := 0
	for ci := range t.classes {
		c := &t.classes[ci]
		floor := uint64(0)
		if nb == n && len(c.mix) >= scanMin { // a unit below it cannot beat the n-th best so far
			floor = scoreFloor(c.weight, best[n-1].score)
		}
		m := c.topByHash(k, n, floor, &buf)
		for _, r := range buf[:m] {
			r.score = rendezvousScore(c.weight, r.h)
			nb = insertByScore(&best, nb, n, r)
		}
	}
	for _, r := range best[:nb] {
		dst = append(dst, r.unit)
	}
	return dst
}

// topByHash puts the class's n units with the highest hashes for the key
// into out, highest first (ties: lower unit first), and returns how many.
// It may leave out units whose hash's top bits are below floor.
func (c *class) topByHash(k keyHash, n int, floor uint64, out *[MaxPick]ranked) int {
	bar := floor << rendezvousShift // a hash h counts if h >= bar
	if floor == 0 {                 // (a floor from other classes is a higher bar)
		if len(c.mix) < scanMin {
			return c.topByHashSmall(k, n, out)
		}
		if bar = c.lowerBound(k, n); bar == 0 {
			return c.topByHashSmall(k, n, out) // no better without a bar
		}
	}
	return c.scan(k, n, bar, out)
}

// topByHashSmall is topByHash for a small class, in one plain loop.
func (c *class) topByHashSmall(k keyHash, n int, out *[MaxPick]ranked) int {
	cnt, i := 0, 0
	for ; i < len(c.mix) && cnt < n; i++ { // fill
		cnt = insertByHash(out, cnt, n, ranked{unit: c.units[i], h: k.unit(c.mix[i]) >> rendezvousShift})
	}
	if cnt < n {
		return cnt
	}
	worst := out[n-1].h
	for ; i < len(c.mix); i++ {
		if h := k.unit(c.mix[i]) >> rendezvousShift; h > worst { // on a tie the lower unit, seen first, stays
			insertByHash(out, n, n, ranked{unit: c.units[i], h: h})
			worst = out[n-1].h
		}
	}
	return n
}

// keep inserts unit i, whose hash h reached bar, into the cnt entries of
// out and returns the new count and bar: once out holds n, a hash must beat
// the n-th (a tie does not).
func (c *class) keep(out *[MaxPick]ranked, cnt, n, i int, h, bar uint64) (int, uint64) {
	r := ranked{unit: c.units[i], h: h >> rendezvousShift}
	if cnt == n && r.h <= out[n-1].h {
		return cnt, bar // it ties the n-th: only the bar ^0 lets one through
	}
	if cnt = insertByHash(out, cnt, n, r); cnt == n {
		if worst := out[n-1].h; worst < 1<<rendezvousBits-1 {
			bar = (worst + 1) << rendezvousShift
		} else {
			bar = ^uint64(0) // nothing beats the n-th
		}
	}
	return cnt, bar
}

// insertByHash inserts r into the first n entries of out (hash descending;
// r's unit is above theirs), keeping at most k, and returns the new count.
func insertByHash(out *[MaxPick]ranked, n, k int, r ranked) int {
	j := min(n, k-1)
	for j > 0 && out[j-1].h < r.h {
		out[j] = out[j-1]
		j--
	}
	out[j] = r
	return min(n+1, k)
}

// insertByScore inserts r into the first n entries of best (score
// descending, ties by unit ascending), keeping at most k, and returns the new
// count.
func insertByScore(best *[MaxPick]ranked, n, k int, r ranked) int {
	if n == k && !before(r, best[k-1]) {
		return n
	}
	j := min(n, k-1)
	for j > 0 && before(r, best[j-1]) {
		best[j] = best[j-1]
		j--
	}
	best[j] = r
	return min(n+1, k)
}

func before(a, b ranked) bool {
	return a.score > b.score || a.score == b.score && a.unit < b.unit
}
