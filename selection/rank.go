// Package selection decides which unit takes a new order. Everything that
// decides it is in one formula, built into a Plan (Build) whenever an input
// changes and applied per create by Plan.Pick:
//
//  1. Partition. A merchant's new orders go to its partition: the one the
//     routing table maps it to ("merchants"), "normal" if none. So the
//     key-merchant and pre-release partitions serve only their merchants.
//  2. Eligible units: the partition's units that are available, hot and
//     accept new orders, are not blacklisted (an entry stops counting at its
//     expiry) and have a weight.
//  3. Tiers. An eligible unit is suspect if the health checker ejected it, or
//     if this proxy's own last calls to it failed (Passive). The checker's
//     verdicts are ignored while the proxy cannot reach the checker and for
//     a partition where the checker is in panic (more units looked bad at
//     once than it may eject). Suspects are tried after every healthy unit:
//     a last resort, never removed, so no verdict can empty a partition.
//     Standby units (routing.Unit.Standby) form tiers of their own, visited
//     only while the partition has no healthy regular unit (all masked,
//     drained, blacklisted, not hot, ejected or failing): then the healthy
//     standbys come first, before the suspect regular units and the
//     suspect standbys, and before the partition spills or refuses. A
//     spill partition's standbys count as its own units. The standbys'
//     weights, balance and speed are judged among themselves.
//  4. Canary. If the partition has a canary, a share of order keys (a hash of
//     the key below the share) prefers the units with the release label and
//     the rest prefers the others; each falls back to the other group.
//  5. Weight = routing weight × balance × speed, where
//     balance = 2 for a healthy unit that got less than half the mean recent
//     requests of its group through this proxy (a new or lightly loaded unit
//     catches up; not for a slow unit, which is quiet because it is slow),
//     ½ above twice the mean, else 1 (and 1 for all while the group averages
//     fewer than 10 requests in the Balancer's window);
//     speed = 1/2^k, k = ⌊log2(L/M)⌋ capped at 4, when the unit's latency L
//     exceeds both 2M and M+50ms, M being the median of the partition's
//     healthy units, else 1. L is the checker's probe latency EWMA, or this
//     proxy's own when the checker is not trusted.
//     The factors are powers of two on purpose: noise never changes them, so
//     a key's ranking only changes when a unit really changes.
//  6. Order. Within each tier and group, units are ranked by weighted
//     rendezvous hashing of "mchid/out_trade_no" (Rank): highest
//     -weight/ln(h(key, unit)) first, so every proxy computes the same order
//     and a repeated create lands on the unit that has the first one. A key
//     tries healthy(its group), healthy(other group), suspect(its group),
//     suspect(other group); if the partition spills, the spill partition's
//     order follows, with the last attempt kept for it.
//  7. Refusal. If nothing is eligible in the partition (nor in its spill
//     partition), the create fails with NO_UNIT_AVAILABLE naming it.
//
// A Plan is immutable and shared; Pick takes no lock and does not allocate.
// It hashes the key once, then scans the units of the tiers it visits, an
// xor and a multiply per unit, eight units a round, against a bar that a
// first, branch-free pass over a few groups sets (scan.go).
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
// first, where h is uniform on (0, 1) and independent across units (see
// keyHash.unit): each unit is first for a share of keys proportional to its
// weight, and removing a unit moves only that unit's keys. Rank is the
// reference that Plan.Pick computes faster.
func Rank(dst []tradeunit.UnitID, key string, cands []Candidate) []tradeunit.UnitID {
	dst = dst[:0]
	if len(cands) == 0 {
		return dst
	}
	var buf [64]scored
	sc := buf[:0]
	k := rendezvousKey(hashKey(key))
	for _, c := range cands {
		if c.Weight <= 0 || math.IsNaN(c.Weight) {
			continue
		}
		h := k.unit(unitMix(c.Unit)) >> rendezvousShift
		sc = append(sc, scored{unit: c.Unit, score: rendezvousScore(c.Weight, h)})
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
