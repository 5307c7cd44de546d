package selection

import (
	"fmt"
	"math"
	"slices"
	"time"

	"tradeunit"
	"tradeunit/routing"
)

// Inputs is everything a Plan is built from: the routing table and the
// proxy's views of the units at one moment.
type Inputs struct {
	Table *routing.Table
	Now   time.Time // blacklist entries expire against it
	// Checker is the health checker's view; nil when the proxy cannot
	// reach the checker.
	Checker *CheckerView
	// Passive is this proxy's own view of the units it has called.
	Passive map[tradeunit.UnitID]Observed
	// Recent is each unit's recent request count through this proxy
	// (Balancer.Counts).
	Recent map[tradeunit.UnitID]uint64
}

// CheckerView is what the health checker says about the units.
type CheckerView struct {
	Units map[tradeunit.UnitID]Checked
	// Panic holds the partitions where more units looked bad at once than
	// the checker may eject: it trusts none of its verdicts there, and
	// neither does selection.
	Panic map[string]bool
}

// Checked is the checker's verdict on one unit.
type Checked struct {
	Ejected bool
	Latency time.Duration // EWMA of its probes; 0 if unknown
}

// Observed is this proxy's own view of one unit (see Passive).
type Observed struct {
	Failing  bool          // its last calls failed
	Failures int           // consecutive failures, when failing
	Latency  time.Duration // EWMA of successful calls; 0 if unknown
}

// Tuning of the speed factor; see the package doc.
const (
	slowRatio     = 2                     // slower than this × the median ...
	slowMargin    = 50 * time.Millisecond // ... and than the median + this
	maxSlowHalves = 4                     // the factor stops at 1/16
)

// minBalanceTraffic is the mean recent request count per unit below which
// the balancing factor is not applied: too little traffic to judge.
const minBalanceTraffic = 10

// UnitPlan says how a Plan treats one unit of the routing table, for
// metrics, the health API and tests.
type UnitPlan struct {
	Unit      tradeunit.UnitID
	Partition string
	// Eligible is false when the unit takes no new orders; Reason says why.
	Eligible bool
	Reason   string
	// Suspect units are tried only after every healthy one; Reason says why.
	Suspect bool
	Canary  bool // carries the partition's canary label
	// Standby units are used only while the partition has no healthy
	// eligible unit that is not a standby (see partPlan.rank); InUse says
	// that this is so now and the standby takes the partition's orders.
	Standby, InUse bool
	Balance        float64 // balancing factor: 2, 1 or 0.5
	Speed          float64 // speed factor: 1 down to 1/16
	Weight         float64 // routing weight × Balance × Speed
}

// Plan is the selection of units for new orders, built from one set of
// Inputs; Pick uses it for each create. A Plan is immutable, so one can be
// shared by every request without locks.
type Plan struct {
	merchants map[string]int32 // mapped merchants → index in parts
	normal    int32            // index of routing.DefaultPartition
	parts     []partPlan
	units     []UnitPlan
	next      time.Time
}

// partPlan is one partition's candidates, ready for Pick.
type partPlan struct {
	name        string
	spill       int32 // index of the spill partition, -1 if it refuses
	canaryShare float64
	// tiers, in the order healthy canary, healthy stable, suspect canary,
	// suspect stable, then the standby units, healthy and suspect; Pick
	// visits them in a key's order of preference.
	tiers [numTiers]tier
	// regular says whether the partition has a healthy unit that is not a
	// standby: while it does, the standby tiers are never visited.
	regular bool
	empty   error // NO_UNIT_AVAILABLE when nothing can take its orders
}

const (
	healthyCanary = iota
	healthyStable
	suspectCanary
	suspectStable
	healthyStandby
	suspectStandby
	numTiers
)

// Build makes the Plan for in. It costs O(units) and allocates; call it when
// an input changes, not per request.
func Build(in Inputs) *Plan {
	t := in.Table
	if t == nil {
		t = &routing.Table{}
	}
	p := &Plan{merchants: make(map[string]int32, len(t.Merchants))}
	names := t.PartitionNames()
	index := make(map[string]int32, len(names))
	for i, name := range names {
		index[name] = int32(i)
	}
	p.normal = index[routing.DefaultPartition]
	for mchid, part := range t.Merchants {
		p.merchants[mchid] = index[part]
	}

	byPart := make([][]int, len(names))   // indexes into p.units of eligible units
	standbys := make([][]int, len(names)) // the same, of eligible standby units
	for i := range t.Units {
		u := &t.Units[i]
		up := UnitPlan{Unit: u.ID, Partition: u.Partition, Balance: 1, Speed: 1}
		if up.Partition == "" {
			up.Partition = routing.DefaultPartition
		}
		e, blocked := t.Blacklisted(u.ID, in.Now)
		switch {
		case !u.Available:
			up.Reason = "unavailable"
		case !u.TakesNewOrders():
			up.Reason = "not taking new orders (temperature " + string(u.Temperature) + ", accept_new " + fmt.Sprint(u.AcceptNew) + ")"
		case t.OnlyInEvacuatedZones(u):
			up.Reason = "every logic replica is in an evacuated zone"
		case blocked:
			up.Reason = "blacklisted: " + e.Reason
			if !e.Until.IsZero() && (p.next.IsZero() || e.Until.Before(p.next)) {
				p.next = e.Until
			}
		case u.Weight <= 0 || math.IsNaN(u.Weight):
			up.Reason = "weight 0"
		case u.Standby:
			up.Eligible, up.Standby, up.Weight = true, true, u.Weight
			standbys[index[up.Partition]] = append(standbys[index[up.Partition]], len(p.units))
		default:
			up.Eligible = true
			up.Weight = u.Weight
			byPart[index[up.Partition]] = append(byPart[index[up.Partition]], len(p.units))
		}
		p.units = append(p.units, up)
	}

	p.parts = make([]partPlan, len(names))
	for pi, name := range names {
		pp := &p.parts[pi]
		pp.name, pp.spill = name, -1
		policy := t.Policy(name)
		if policy.OnNoUnit == routing.Spill {
			if si, ok := index[policy.SpillTo]; ok {
				pp.spill = si
			}
		}
		if policy.Canary != nil {
			pp.canaryShare = policy.Canary.Share
		}
		// The standbys are judged apart: their latencies and loads are
		// not the regular units' to compare with, and no canary splits
		// them (they are a fallback, whatever release they run).
		p.judge(pp, byPart[pi], t, policy.Canary, false, in)
		p.judge(pp, standbys[pi], t, nil, true, in)
		pp.regular = pp.tiers[healthyCanary].size()+pp.tiers[healthyStable].size() > 0
		for _, ui := range standbys[pi] {
			p.units[ui].InUse = !pp.regular
		}
		for i := range pp.tiers {
			pp.tiers[i].finish()
		}
	}
	for pi := range p.parts {
		pp := &p.parts[pi]
		pp.empty = p.noUnitError(pp)
	}
	return p
}

// judge sets the tier, canary group and weight of a partition's eligible
// units (its regular ones, or its standbys) and adds them to its tiers.
func (p *Plan) judge(pp *partPlan, members []int, t *routing.Table, canary *routing.Canary, standby bool, in Inputs) {
	trustChecker := in.Checker != nil && !in.Checker.Panic[pp.name]
	latency := make([]time.Duration, len(members))
	var healthyLatencies []time.Duration
	for i, ui := range members {
		up := &p.units[ui]
		u, _ := t.Unit(up.Unit)
		up.Canary = canary.Matches(u)
		obs := in.Passive[up.Unit]
		var chk Checked
		if trustChecker {
			chk = in.Checker.Units[up.Unit]
		}
		switch {
		case chk.Ejected:
			up.Suspect, up.Reason = true, "ejected by the health checker"
		case obs.Failing:
			up.Suspect, up.Reason = true, fmt.Sprintf("its last %d calls from this proxy failed", obs.Failures)
		}
		latency[i] = obs.Latency
		if chk.Latency > 0 {
			latency[i] = chk.Latency
		}
		if !up.Suspect && latency[i] > 0 {
			healthyLatencies = append(healthyLatencies, latency[i])
		}
	}
	median := medianOf(healthyLatencies)
	for i, ui := range members {
		p.units[ui].Speed = speedFactor(latency[i], median)
	}
	// Balance within each group of healthy units that share the same
	// traffic: the canary units get their share, the others the rest.
	for _, wantCanary := range []bool{true, false} {
		var group []*UnitPlan
		for _, ui := range members {
			if up := &p.units[ui]; !up.Suspect && up.Canary == wantCanary {
				group = append(group, up)
			}
		}
		balance(group, in.Recent)
	}
	for _, ui := range members {
		up := &p.units[ui]
		up.Weight *= up.Balance * up.Speed
		ti := healthyStable
		switch {
		case up.Suspect && up.Canary:
			ti = suspectCanary
		case up.Suspect:
			ti = suspectStable
		case up.Canary:
			ti = healthyCanary
		}
		if standby {
			ti = healthyStandby
			if up.Suspect {
				ti = suspectStandby
			}
		}
		pp.tiers[ti].add(up.Unit, up.Weight)
	}
}

// balance sets the balancing factor of a group of healthy units: 2 for a
// unit with less than half the mean recent requests (unless it is slow: it
// is quiet because it is slow), ½ for one with more than twice the mean.
func balance(group []*UnitPlan, recent map[tradeunit.UnitID]uint64) {
	if len(group) < 2 {
		return
	}
	var total uint64
	for _, up := range group {
		total += recent[up.Unit]
	}
	if total < uint64(minBalanceTraffic*len(group)) {
		return
	}
	mean := float64(total) / float64(len(group))
	for _, up := range group {
		switch n := float64(recent[up.Unit]); {
		case n < mean/2 && up.Speed == 1:
			up.Balance = 2
		case n > mean*2:
			up.Balance = 0.5
		}
	}
}

// speedFactor is 1/2^k, k = ⌊log2(l/median)⌋ capped at maxSlowHalves, for a
// unit slower than slowRatio × median and median + slowMargin; 1 otherwise
// or when either latency is unknown.
func speedFactor(l, median time.Duration) float64 {
	if l <= 0 || median <= 0 || l < slowRatio*median || l < median+slowMargin {
		return 1
	}
	k := min(int(math.Log2(float64(l)/float64(median))), maxSlowHalves)
	return math.Ldexp(1, -k)
}

func medianOf(v []time.Duration) time.Duration {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	return v[len(v)/2]
}

func (p *Plan) noUnitError(pp *partPlan) error {
	if pp.size() > 0 || pp.spill >= 0 && p.parts[pp.spill].size() > 0 {
		return nil
	}
	msg := fmt.Sprintf("partition %s has no unit that takes new orders", pp.name)
	if pp.spill >= 0 {
		msg = fmt.Sprintf("partition %s and its spill partition %s have no unit that takes new orders", pp.name, p.parts[pp.spill].name)
	}
	return &tradeunit.Error{Code: tradeunit.CodeNoUnitAvailable, Message: msg, Op: "selection.Pick"}
}

// Units returns how the plan treats each unit of the routing table, in unit
// order. The slice belongs to the plan.
func (p *Plan) Units() []UnitPlan { return p.units }

// NextChange returns when the plan goes stale by itself (the earliest
// blacklist expiry), or the zero time.
func (p *Plan) NextChange() time.Time { return p.next }

// PartitionOf returns the partition of a merchant's new orders.
func (p *Plan) PartitionOf(mchid string) string { return p.parts[p.partitionIndex(mchid)].name }

func (p *Plan) partitionIndex(mchid string) int32 {
	if i, ok := p.merchants[mchid]; ok {
		return i
	}
	return p.normal
}
