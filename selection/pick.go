package selection

import (
	"math"

	"tradeunit"
)

// MaxPick bounds how many units one Pick returns (and so the attempts of one
// create).
const MaxPick = 8

// Pick appends to dst[:0] up to n units (at most MaxPick) that may take the
// merchant's new order, in the order to try them (see the package doc).
// It returns NO_UNIT_AVAILABLE, naming the partition, when no unit can.
//
// Pick does not allocate and takes no lock: it hashes the order key once
// per candidate of the tiers it needs and keeps the best n.
func (p *Plan) Pick(dst []tradeunit.UnitID, mchid, outTradeNo string, n int) ([]tradeunit.UnitID, error) {
	dst = dst[:0]
	n = max(1, min(n, MaxPick))
	kh := hashKey2(mchid, outTradeNo)
	pp := &p.parts[p.partitionIndex(mchid)]
	if pp.empty != nil {
		return dst, pp.empty
	}
	own := n
	if pp.spill >= 0 && n > 1 {
		own = n - 1 // the last attempt is kept for the spill partition
	}
	dst = pp.rank(dst, kh, own)
	if pp.spill >= 0 {
		dst = p.parts[pp.spill].rank(dst, kh, n)
	}
	return dst, nil
}

// rank appends the partition's units in the key's order of preference until
// dst holds limit units.
func (pp *partPlan) rank(dst []tradeunit.UnitID, kh uint64, limit int) []tradeunit.UnitID {
	order := [4]int{healthyStable, healthyCanary, suspectStable, suspectCanary}
	if pp.canaryShare > 0 && canaryPoint(kh) < pp.canaryShare {
		order = [4]int{healthyCanary, healthyStable, suspectCanary, suspectStable}
	}
	for _, ti := range order {
		if len(dst) >= limit {
			break
		}
		dst = pp.tiers[ti].top(dst, kh, limit-len(dst))
	}
	return dst
}

func (pp *partPlan) size() int {
	n := 0
	for i := range pp.tiers {
		for _, c := range pp.tiers[i].classes {
			n += len(c.units)
		}
	}
	return n
}

// tier is a set of units ranked together, grouped into classes of equal
// weight: within a class the rendezvous score -w/ln(u) grows with the hash
// u, so a class is ranked by comparing integer hashes, and logarithms are
// taken only for each class's best few.
type tier struct {
	classes []class
}

type class struct {
	weight float64
	units  []tradeunit.UnitID // ascending
	mix    []uint64           // unitMix of each unit
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

// ranked is a unit with its hash and score for one key.
type ranked struct {
	unit  tradeunit.UnitID
	h     uint64 // top 53 bits of the rendezvous hash
	score float64
}

// top appends the tier's best k units for the key, in Rank's order.
func (t *tier) top(dst []tradeunit.UnitID, kh uint64, k int) []tradeunit.UnitID {
	if k <= 0 || len(t.classes) == 0 {
		return dst
	}
	var best, buf [MaxPick]ranked
	nb := 0
	for ci := range t.classes {
		c := &t.classes[ci]
		m := c.topByHash(kh, k, &buf)
		if len(t.classes) == 1 {
			for _, r := range buf[:m] {
				dst = append(dst, r.unit)
			}
			return dst
		}
		for _, r := range buf[:m] {
			r.score = -c.weight / math.Log((float64(r.h)+0.5)/(1<<53))
			nb = insertByScore(&best, nb, k, r)
		}
	}
	for _, r := range best[:nb] {
		dst = append(dst, r.unit)
	}
	return dst
}

// topByHash puts the class's k units with the highest hash for the key into
// out, highest first (ties: lower unit first), and returns how many.
func (c *class) topByHash(kh uint64, k int, out *[MaxPick]ranked) int {
	n, i := 0, 0
	for ; i < len(c.mix) && n < k; i++ { // fill
		n = insertByHash(out, n, k, ranked{unit: c.units[i], h: mixHash(kh, c.mix[i]) >> 11})
	}
	if n < k {
		return n
	}
	// Scan: the hot loop, one hash and one compare per unit.
	worst := out[k-1].h
	mix := c.mix[i:]
	units := c.units[i:len(c.mix)]
	for j, m := range mix {
		if h := mixHash(kh, m) >> 11; h > worst { // on a tie the lower unit, seen first, stays
			insertByHash(out, k, k, ranked{unit: units[j], h: h})
			worst = out[k-1].h
		}
	}
	return k
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

// canaryPoint maps a key's hash to [0, 1), independently of the rendezvous
// hashes, to decide which keys prefer the canary units: a share s of keys
// falls below s.
func canaryPoint(kh uint64) float64 {
	return float64(mixHash(kh, 0x5851f42d4c957f2d)>>11) / (1 << 53)
}
