package admin

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"tradeunit"
	"tradeunit/routing"
)

// Evacuating a zone (a machine room about to be lost, or taken down for
// work) moves what it serves elsewhere in the seeds' order: the storage
// mapping first (every primary in the zone hands over to a replica outside
// it), then the traffic (the routing table lists the zone as evacuated, so
// proxies call logic replicas there only as a last resort and new orders
// go to units served elsewhere).

// EvacuationPlan is what evacuating a zone would do, or why it must not.
type EvacuationPlan struct {
	Zone string `json:"zone"`
	// Moves are the storage entries whose primary is in the zone, each
	// with the replicas outside it that may take over.
	Moves []EvacuationMove `json:"moves"`
	// Refusals say why the plan must not run; empty when it may.
	Refusals []string `json:"refusals,omitempty"`
	// Warnings say what the evacuation leaves exposed, without refusing.
	Warnings []string `json:"warnings,omitempty"`
	// Units are the units with a logic replica in the zone, whose calls
	// move to their other replicas; Stranded, those with no other (they
	// take no new orders while the zone is evacuated).
	Units    []tradeunit.UnitID `json:"units,omitempty"`
	Stranded []tradeunit.UnitID `json:"stranded,omitempty"`
}

// EvacuationMove is one storage entry (with the entries on the same
// servers) whose primary is in the zone being evacuated.
type EvacuationMove struct {
	Entry      routing.StorageRef   `json:"entry"`
	Colocated  []routing.StorageRef `json:"colocated,omitempty"`
	Primary    string               `json:"primary"`    // its server, in the zone
	Candidates []string             `json:"candidates"` // replicas outside the zone
}

// EvacuationResult is what Evacuate did.
type EvacuationResult struct {
	Plan      *EvacuationPlan   `json:"plan"`
	Failovers []*FailoverResult `json:"-"`
	// Rejoined are the old primaries that follow the new ones as replicas
	// again; a rejoin that failed is in the error and leaves the server
	// fenced (tradeunit admin rejoin).
	Rejoined []string `json:"rejoined,omitempty"`
	// Revision is the routing table's revision listing the zone evacuated.
	Revision int64 `json:"revision"`
}

// PlanEvacuation says what evacuating zone would do, changing nothing. A
// plan is refused when a primary in the zone has no replica outside it
// that could take over, or no second one to acknowledge the new primary's
// commits: a unit would be left without a replica acknowledging, and so
// taking no changes, once the zone is gone. Errors: PARAM_ERROR for a bad
// zone name or a zone nothing is in.
func (a *Admin) PlanEvacuation(zone string) (*EvacuationPlan, error) {
	if !routing.ValidZone(zone) {
		return nil, paramErrorf("zone %q must match [a-z0-9_-]{1,32}", zone)
	}
	plan := &EvacuationPlan{Zone: zone}
	t := a.Routes.Current()
	known := false
	for i := range t.Units {
		u := &t.Units[i]
		if !slices.ContainsFunc(u.LogicAddrs, func(a string) bool { return u.LogicZones[a] == zone }) {
			continue
		}
		known = true
		plan.Units = append(plan.Units, u.ID)
		if stranded := routing.SingleZone(u.LogicAddrs, u.LogicZones) == zone; stranded {
			plan.Stranded = append(plan.Stranded, u.ID)
			plan.Warnings = append(plan.Warnings, fmt.Sprintf("unit %d has every logic replica in zone %s: it takes no new orders while the zone is evacuated, "+
				"and its orders are served from the zone until it has replicas elsewhere (tradeunit admin unit set --logic ...)", u.ID, zone))
		}
	}
	if a.Topology != nil {
		top := a.Topology.Current()
		moved := map[routing.StorageRef]bool{}
		for _, ref := range top.Refs() {
			st, _ := top.Entry(ref)
			known = known || slices.ContainsFunc(st.Servers(), func(s string) bool { z, _ := zoneOf(top, s); return z == zone })
			if moved[ref] {
				continue
			}
			m, refusal, warning := planMove(top, ref, *st, zone)
			if m != nil {
				plan.Moves = append(plan.Moves, *m)
				for _, r := range m.Colocated {
					moved[r] = true
				}
			}
			if refusal != "" {
				plan.Refusals = append(plan.Refusals, refusal)
			}
			if warning != "" {
				plan.Warnings = append(plan.Warnings, warning)
			}
		}
	}
	if !known {
		return nil, paramErrorf("no logic replica or storage server is in zone %s (zones are set with tradeunit admin unit set --logic-zone / --storage-zone)", zone)
	}
	return plan, nil
}

// planMove plans one storage entry: a move when its primary is in zone,
// a refusal when that move could not leave it a primary with an
// acknowledging replica, and a warning when its primary stays but only
// replicas in the zone acknowledge it.
func planMove(t *routing.Topology, ref routing.StorageRef, st routing.Storage, zone string) (m *EvacuationMove, refusal, warning string) {
	if !st.HasPrimary() {
		return nil, "", ""
	}
	outside := outsideZone(t, st.Replicas, zone)
	pz, known := zoneOf(t, st.Primary.Server())
	switch {
	case !known:
		return nil, "", ""
	case pz != zone:
		if len(st.Replicas) > 0 && len(outside) == 0 {
			warning = fmt.Sprintf("%s: every replica of its primary %s is in zone %s: once the zone is gone, none acknowledges and it takes no changes", ref, st.Primary.Server(), zone)
		}
		return nil, "", warning
	}
	col, err := colocated(t, ref, st)
	if err != nil {
		return nil, err.Error(), ""
	}
	m = &EvacuationMove{Entry: ref, Colocated: col, Primary: st.Primary.Server()}
	for _, d := range outside {
		m.Candidates = append(m.Candidates, d.Server())
	}
	switch len(outside) {
	case 0:
		refusal = fmt.Sprintf("%s: its primary %s is in zone %s and no replica of a known zone is outside it", ref, st.Primary.Server(), zone)
	case 1:
		refusal = fmt.Sprintf("%s: its primary %s is in zone %s and only one replica (%s) is outside it: promoted, it would have no replica acknowledging its commits once the zone is gone",
			ref, st.Primary.Server(), zone, outside[0].Server())
	}
	return m, refusal, ""
}

// EvacuateOptions configures Evacuate.
type EvacuateOptions struct {
	// Failover configures each primary's handover (its AvoidZone is set
	// to the zone).
	Failover FailoverOptions
	// Force runs a plan with refusals (an operator who accepts that some
	// units will take no changes once the zone is gone).
	Force bool
}

// Evacuate moves everything zone serves out of it (see PlanEvacuation for
// the plan and its refusals): for each primary in the zone, a failover to
// a replica outside it that has received all the old primary wrote
// (FailoverOptions.AvoidZone), after which the old primary rejoins as a
// replica; then the routing table lists the zone as evacuated. Run again
// after a failure, it resumes: entries already moved are no longer in the
// plan. A refused plan changes nothing and is an INVALID_REQUEST error.
func (a *Admin) Evacuate(ctx context.Context, zone string, o EvacuateOptions) (*EvacuationResult, error) {
	plan, err := a.PlanEvacuation(zone)
	if err != nil {
		return nil, err
	}
	res := &EvacuationResult{Plan: plan}
	if len(plan.Refusals) > 0 && !o.Force {
		return res, tradeunit.Errorf(tradeunit.CodeInvalidRequest, "evacuation of zone %s refused, nothing changed: %s", zone, plan.Refusals[0])
	}
	fo := o.Failover
	fo.AvoidZone = zone
	var errs []error
	for _, m := range plan.Moves {
		if len(m.Candidates) == 0 {
			continue // forced past its refusal: nothing to move to
		}
		r, err := a.FailoverStorage(ctx, m.Entry, fo)
		if r != nil {
			res.Failovers = append(res.Failovers, r)
		}
		if err != nil {
			return res, fmt.Errorf("evacuation of zone %s: %w", zone, err)
		}
		if _, err := a.RejoinStorage(ctx, m.Entry, m.Primary, fo); err != nil {
			errs = append(errs, fmt.Errorf("%s: the old primary %s stays fenced: %w", m.Entry, m.Primary, err))
		} else {
			res.Rejoined = append(res.Rejoined, m.Primary)
		}
	}
	t, err := a.update(ctx, "zone evacuate "+zone, func(t *routing.Table) error {
		if !slices.Contains(t.EvacuatedZones, zone) {
			t.EvacuatedZones = append(t.EvacuatedZones, zone)
		}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("evacuation of zone %s: its primaries moved, but the routing table could not list it evacuated (re-run): %w", zone, err)
	}
	res.Revision = t.Revision
	return res, errors.Join(errs...)
}

// RestoreZone undoes an evacuation's traffic step: proxies call the
// zone's logic replicas again and its units take new orders. Primaries stay
// where the evacuation moved them (a handover back is an operator's
// failover, when wanted); servers in the zone that a failover fenced are
// rejoined as replicas, each a warning when it cannot be (still down, or
// errant: rebuild it). Errors: PARAM_ERROR for a zone not evacuated.
func (a *Admin) RestoreZone(ctx context.Context, zone string, o FailoverOptions) (*routing.Table, []string, error) {
	if !slices.Contains(a.Routes.Current().EvacuatedZones, zone) {
		return nil, nil, paramErrorf("zone %q is not evacuated", zone)
	}
	var warnings []string
	if a.Topology != nil {
		top := a.Topology.Current()
		tried := map[string]bool{} // a rejoin moves the server in the entries on the same servers too
		for _, ref := range top.Refs() {
			st, _ := top.Entry(ref)
			for _, d := range st.Fenced {
				if z, _ := zoneOf(top, d.Server()); z != zone || !st.HasPrimary() || tried[d.Server()] {
					continue
				}
				tried[d.Server()] = true
				if _, err := a.RejoinStorage(ctx, ref, d.Server(), o); err != nil {
					warnings = append(warnings, fmt.Sprintf("%s: %s stays fenced: %v", ref, d.Server(), err))
				}
			}
		}
	}
	t, err := a.update(ctx, "zone restore "+zone, func(t *routing.Table) error {
		t.EvacuatedZones = slices.DeleteFunc(t.EvacuatedZones, func(z string) bool { return z == zone })
		return nil
	})
	return t, warnings, err
}
