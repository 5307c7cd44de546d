package selection

// The scan finds a class's best n units for a key (class.topByHash) by
// hashing each unit (keyHash.unit) against a bar that a unit's hash must
// reach to be among the best so far. A unit that reaches it costs a
// mispredicted branch and an insertion, so the bar starts high: lowerBound
// takes the n-th best of the best hashes of separate groups of units (the
// first few quads), a value n units reach; then reaching returns each next
// unit that reaches the bar, four units a round. A class smaller than
// scanMin takes one plain loop instead.

// scanMin is the size of the smallest class that topByHash scans with a
// lower bound.
const scanMin = 64

// groupQuads is the size, in quads, of the groups of units whose best hashes
// lowerBound compares.
const groupQuads = 8

// lowerBound returns a bar, on full hashes, that the class's n-th best hash
// for the key reaches, or 0: the n-th best of the best hashes of separate
// groups of units, which n different units reach, with the bits below the
// top rendezvousBits cleared.
func (c *class) lowerBound(k keyHash, n int) uint64 {
	var bar uint64
	if len(c.quads) >= 2*n*groupQuads { // the groups are the first few quads
		bar = ^uint64(0)
		for g := range n {
			best := uint64(0)
			group := (*[groupQuads][4]uint64)(c.quads[g*groupQuads:])
			for q := range group {
				m := &group[q]
				best = max(best, k.unit(m[0]), k.unit(m[1]), k.unit(m[2]), k.unit(m[3]))
			}
			bar = min(bar, best)
		}
	}
	return bar >> rendezvousShift << rendezvousShift
}

// reaching returns the index of the first unit from i on whose hash reaches
// bar, len(c.mix) if none.
func (c *class) reaching(k keyHash, i int, bar uint64) int {
	for ; i%4 != 0 && i < len(c.mix); i++ { // up to a quad
		if k.unit(c.mix[i]) >= bar {
			return i
		}
	}
	if q := i / 4; q < len(c.quads) {
		// The hot loop: one xor, one multiply and one compare per unit,
		// no bounds check.
		quads := c.quads[q:]
		for j := range quads {
			switch m := &quads[j]; {
			case k.unit(m[0]) >= bar:
				return 4 * (q + j)
			case k.unit(m[1]) >= bar:
				return 4*(q+j) + 1
			case k.unit(m[2]) >= bar:
				return 4*(q+j) + 2
			case k.unit(m[3]) >= bar:
				return 4*(q+j) + 3
			}
		}
		i = 4 * len(c.quads)
	}
	for ; i < len(c.mix); i++ { // the rest, fewer than 4
		if k.unit(c.mix[i]) >= bar {
			return i
		}
	}
	return len(c.mix)
}
