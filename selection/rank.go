// Package selection decides which unit takes a new order.
//
// Create ranks the candidate units for each order by weighted rendezvous
// hashing of the merchant's order key: every proxy computes the same
// preference order for the same key and the same candidates, so a create
// repeated by the client lands on the same unit and is answered there
// idempotently. Retries walk down the ranking. A unit's weight is its
// capacity from the routing table times a balancing factor (see Balancer)
// that favours units with fewer recent requests.
package selection

import (
	"cmp"
	"math"
	"slices"

	"tradeunit"
)

// Candidate is a unit that may take a new order, with its weight (> 0).
type Candidate struct {
	Unit   tradeunit.UnitID
	Weight float64
}

// Rank returns the candidates' units in preference order for key, appended
// to dst[:0]. The unit with the highest score -weight/ln(h(key, unit)) comes
// first, where h is uniform on (0, 1): each unit is first for a share of keys
// proportional to its weight, and removing a unit moves only that unit's keys.
func Rank(dst []tradeunit.UnitID, key string, cands []Candidate) []tradeunit.UnitID {
	dst = dst[:0]
	if len(cands) == 0 {
		return dst
	}
	var buf [64]scored
	sc := buf[:0]
	kh := hashKey(key)
	for _, c := range cands {
		if c.Weight <= 0 || math.IsNaN(c.Weight) {
			continue
		}
		h := unitHash(kh, c.Unit)
		// Map the top 53 bits to (0, 1), never 0 or 1, so the log is finite and negative.
		u := (float64(h>>11) + 0.5) / (1 << 53)
		sc = append(sc, scored{unit: c.Unit, score: -c.Weight / math.Log(u)})
	}
	slices.SortFunc(sc, func(a, b scored) int {
		switch {
		case a.score > b.score:
			return -1
		case a.score < b.score:
			return 1
		}
		return cmp.Compare(a.unit, b.unit)
	})
	for _, s := range sc {
		dst = append(dst, s.unit)
	}
	return dst
}

type scored struct {
	unit  tradeunit.UnitID
	score float64
}

// hashKey is 64-bit FNV-1a.
func hashKey(key string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= 1099511628211
	}
	return h
}

// unitHash mixes the key's hash with the unit number (splitmix64 finalizer),
// so that each unit's scores are independent.
func unitHash(kh uint64, u tradeunit.UnitID) uint64 {
	z := kh ^ (uint64(u) * 0x9e3779b97f4a7c15)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
