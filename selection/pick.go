package selection

import "tradeunit"

// MaxPick bounds how many units one Pick returns (and so the attempts of one
// create).
const MaxPick = 8

// Pick appends to dst[:0] up to n units (at most MaxPick) that may take the
// merchant's new order, in the order to try them (see the package doc).
// It returns NO_UNIT_AVAILABLE, naming the partition, when no unit can.
//
// Pick does not allocate and takes no lock: it hashes the order key once,
// then scans the candidates of the tiers it needs for the best n (scan.go).
func (p *Plan) Pick(dst []tradeunit.UnitID, mchid, outTradeNo string, n int) ([]tradeunit.UnitID, error) {
	dst = dst[:0]
	n = max(1, min(n, MaxPick))
	pp := &p.parts[p.partitionIndex(mchid)]
	if pp.empty != nil {
		return dst, pp.empty
	}
	kh := hashKey2(mchid, outTradeNo)
	k := rendezvousKey(kh)
	own := n
	if pp.spill >= 0 && n > 1 {
		own = n - 1 // the last attempt is kept for the spill partition
	}
	dst = pp.rank(dst, kh, k, own)
	if pp.spill >= 0 {
		dst = p.parts[pp.spill].rank(dst, kh, k, n)
	}
	return dst, nil
}

// rank appends the partition's units in the key's order of preference until
// dst holds limit units: kh is the key's hash, k its rendezvous part.
//
// While the partition has a healthy regular unit, its standbys are not
// ranked at all: they take no new order, not even a retry's, so what they
// hold is only what the partition could not place elsewhere. Without one,
// the healthy standbys come first, then the suspect regular units (the
// last resort they always were), then the suspect standbys.
func (pp *partPlan) rank(dst []tradeunit.UnitID, kh uint64, k keyHash, limit int) []tradeunit.UnitID {
	order := [4]int{healthyStable, healthyCanary, suspectStable, suspectCanary}
	if pp.canaryShare > 0 && canaryPoint(kh) < pp.canaryShare {
		order = [4]int{healthyCanary, healthyStable, suspectCanary, suspectStable}
	}
	if !pp.regular {
		// Both healthy tiers are empty: the standbys take their place.
		order = [4]int{healthyStandby, order[2], order[3], suspectStandby}
	}
	for _, ti := range order {
		if len(dst) >= limit {
			break
		}
		dst = pp.tiers[ti].top(dst, k, limit-len(dst))
	}
	return dst
}

func (pp *partPlan) size() int {
	n := 0
	for i := range pp.tiers {
		n += pp.tiers[i].size()
	}
	return n
}

// canaryPoint maps a key's hash to [0, 1), independently of the rendezvous
// hashes, to decide which keys prefer the canary units: a share s of keys
// falls below s.
func canaryPoint(kh uint64) float64 {
	return float64(mixHash(kh, 0x5851f42d4c957f2d)>>11) / (1 << 53)
}
