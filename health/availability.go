package health

import (
	"math"
	"slices"

	"tradeunit"
)

// Availability is a partition's availability as its users see it, computed
// from its units' measured ones (each unit's share of passing probes over
// the window), assuming units fail independently — the point of units
// (seed 000 §6): a lost unit costs its own orders' calls, and a create
// only while every unit it tries is out.
type Availability struct {
	// Create is the chance that a create succeeds: that at least one of
	// the units it tries (CreateAttempts, as the proxy's
	// --create-attempts) is up, 1 − Π(1 − a). It takes the least
	// available of the units that take new orders, so it is a lower bound:
	// the proxy tries the best-ranked, healthy ones first.
	Create float64 `json:"create"`
	// Order is the chance that a call on one existing order (pay, query,
	// close, refund) succeeds: its unit must be up, so the units' mean
	// availability, for orders spread evenly over them.
	Order float64 `json:"order"`
}

// availability computes a partition's Availability from the availabilities
// of its units that take new orders (creates) and of all its probed units
// (orders), for creates that try attempts units. Without units a figure is
// 0: nothing can serve.
func availability(creates, all []float64, attempts int) Availability {
	var a Availability
	if len(creates) > 0 {
		worst := slices.Sorted(slices.Values(creates))[:min(attempts, len(creates))]
		allDown := 1.0
		for _, u := range worst {
			allDown *= 1 - u
		}
		a.Create = 1 - allDown
	}
	if len(all) > 0 {
		sum := 0.0
		for _, u := range all {
			sum += u
		}
		a.Order = sum / float64(len(all))
	}
	// Rounded to what a probe window can tell apart.
	a.Create, a.Order = math.Round(a.Create*1e6)/1e6, math.Round(a.Order*1e6)/1e6
	return a
}

// availabilityLocked computes a partition's Availability from the probes
// of its units (as judgeLocked groups them); c.mu is held.
func (c *Checker) availabilityLocked(units map[tradeunit.UnitID]*unitStats) Availability {
	var creates, all []float64
	for id, s := range units {
		rate, _ := s.successRate()
		all = append(all, rate)
		if e := c.units[id]; e != nil && e.target.Order {
			creates = append(creates, rate)
		}
	}
	return availability(creates, all, c.cfg.CreateAttempts)
}

// partitionsLocked groups the probed units' stats by partition; c.mu is
// held.
func (c *Checker) partitionsLocked() map[string]map[tradeunit.UnitID]*unitStats {
	out := map[string]map[tradeunit.UnitID]*unitStats{}
	for id, e := range c.units {
		if out[e.partition] == nil {
			out[e.partition] = map[tradeunit.UnitID]*unitStats{}
		}
		out[e.partition][id] = &e.stats
	}
	return out
}
