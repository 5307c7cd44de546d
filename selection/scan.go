package selection

// The scan finds a class's best n units for a key (class.topByHash) by
// hashing each unit (keyHash.unit) against a bar that a unit's hash must
// reach to be among the best so far. A unit that reaches it costs a
// mispredicted branch and an insertion, so the bar starts high: lowerBound
// takes the lowest of the best hashes of n separate groups of units (the
// first few), a value n units reach; then reaching hashes the units eight a
// round, one xor, one multiply and one compare each, and returns only a
// unit that reaches the bar. scan keeps the best so far packed, hash and
// index in one integer (packed), and inserts into them without a branch
// (insertPacked), so that a unit that reaches the bar costs little more
// than the branch that found it. A class smaller than
// scanMin takes one plain loop instead (topByHashSmall).
//
// The bar only saves work: whatever it is, as long as the n-th best hash
// reaches it, the result is the same (TestTopByHashMatchesReference).

// scanMin is the size of the smallest class that topByHash scans with a
// lower bound.
const scanMin = 64

// groupSize is the largest size of the groups of units whose best hashes
// lowerBound compares (a class of fewer than 2n groups of it takes smaller
// ones, down to 8 units).
const groupSize = 32

// lowerBound returns a bar, on full hashes, that the class's n-th best hash
// for the key reaches, or 0: the n-th best of the best hashes of separate
// groups of units, which n different units reach, with the bits below the
// top rendezvousBits cleared.
func (c *class) lowerBound(k keyHash, n int) uint64 {
	// n groups of the first units, of up to groupSize units each, that
	// leave at least as many after them
	size := groupSize
	for size >= 8 && len(c.mix) < 2*n*size {
		size /= 2
	}
	if size < 8 {
		return 0
	}
	bar := ^uint64(0)
	for g := range n {
		bar = min(bar, groupMax(k.a, k.b, c.mix[g*size:(g+1)*size]))
	}
	return bar >> rendezvousShift << rendezvousShift
}

// groupMax returns the highest hash (a XOR mix) × b of a group of units, a
// multiple of 4 of them, without a branch on the hashes.
func groupMax(a, b uint64, group []uint64) uint64 {
	var m0, m1 uint64 // two maxima, so that the maxes wait less on each other
	for q := 0; q+4 <= len(group); q += 4 {
		m := group[q : q+4 : q+4]
		h0, h1, h2, h3 := (a^m[0])*b, (a^m[1])*b, (a^m[2])*b, (a^m[3])*b
		m0 = max(m0, h0, h1)
		m1 = max(m1, h2, h3)
	}
	return max(m0, m1)
}

// scan puts the class's n units with the highest hashes for the key that
// reach bar (> 0) into out, highest first (ties: lower unit first), and
// returns how many.
func (c *class) scan(k keyHash, n int, bar uint64, out *[MaxPick]ranked) int {
	if len(c.mix) < 8 || len(c.mix) > packedUnits {
		return c.scanKeep(k, n, bar, out) // too few to pay for packing, or too many to pack
	}
	// The best so far, packed (see packed), highest first; none is the
	// packed value of no unit, below every unit that reaches bar.
	none := bar - 1
	var best [MaxPick]uint64
	top := best[:n]
	for t := range top {
		top[t] = none
	}
	mix := c.mix
	i := 0
	for ; ; i++ {
		if i = reaching(k.a, k.b, bar, mix, i); i+8 > len(mix) {
			break
		}
		insertPacked(top, packed(k.unit(mix[i]), i))
		bar = max(bar, top[n-1]&^packedIndex)
	}
	for ; i < len(mix); i++ { // the rest, fewer than 8
		if h := k.unit(mix[i]); h >= bar {
			insertPacked(top, packed(h, i))
			bar = max(bar, top[n-1]&^packedIndex)
		}
	}
	cnt := 0
	for _, p := range top {
		if p == none {
			break
		}
		out[cnt] = ranked{unit: c.units[packedIndex-p&packedIndex], h: p >> rendezvousShift}
		cnt++
	}
	return cnt
}

// packedUnits is the size of the largest class whose units scan packs.
const packedUnits = 1 << rendezvousShift

const packedIndex = packedUnits - 1

// packed is the hash h of unit i of a class in one integer that orders as
// the ranking does: h's top rendezvousBits, then i, lowest first. Every unit
// of a class packs to a different value.
func packed(h uint64, i int) uint64 { return h&^packedIndex | (packedIndex - uint64(i)) }

// insertPacked inserts p into top (descending), dropping the lowest:
// branch-free, as where p lands is what the branch would mispredict.
func insertPacked(top []uint64, p uint64) {
	for t, q := range top {
		top[t], p = max(q, p), min(q, p)
	}
}

// scanKeep is scan for a class of fewer than 8 or more than packedUnits
// units: it keeps the best so far with keep.
func (c *class) scanKeep(k keyHash, n int, bar uint64, out *[MaxPick]ranked) int {
	cnt, i := 0, 0
	for ; ; i++ {
		if i = reaching(k.a, k.b, bar, c.mix, i); i+8 > len(c.mix) {
			break
		}
		cnt, bar = c.keep(out, cnt, n, i, k.unit(c.mix[i]), bar)
	}
	for ; i < len(c.mix); i++ { // the rest, fewer than 8
		if h := k.unit(c.mix[i]); h >= bar {
			cnt, bar = c.keep(out, cnt, n, i, h, bar)
		}
	}
	return cnt
}

// reaching returns the first unit from i on whose hash (a XOR mix) × b
// reaches bar, looking at eight units a round; if none does, the first unit
// of the round that would run past the end (fewer than eight are left).
//
// The hot loop: per unit one xor, one multiply and one compare, and a
// branch taken only by a unit that reaches the bar.
func reaching(a, b, bar uint64, mix []uint64, i int) int {
	for ; i+8 <= len(mix); i += 8 {
		m := mix[i : i+8 : i+8]
		h0, h1, h2, h3 := (a^m[0])*b, (a^m[1])*b, (a^m[2])*b, (a^m[3])*b
		switch {
		case h0 >= bar:
			return i
		case h1 >= bar:
			return i + 1
		case h2 >= bar:
			return i + 2
		case h3 >= bar:
			return i + 3
		}
		h4, h5, h6, h7 := (a^m[4])*b, (a^m[5])*b, (a^m[6])*b, (a^m[7])*b
		switch {
		case h4 >= bar:
			return i + 4
		case h5 >= bar:
			return i + 5
		case h6 >= bar:
			return i + 6
		case h7 >= bar:
			return i + 7
		}
	}
	return i
}
