package admin

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"tradeunit"
	"tradeunit/routing"
)

// ZoneWarnings says what about a unit's placement one zone's loss would
// take down entirely: all its logic replicas in one zone (no proxy reaches
// it), or its storage primary and every replica in one zone (nothing to
// fail over to). st is nil without a storage topology. Zones that are not
// all known warn of nothing: an unknown zone may be another.
func ZoneWarnings(u *routing.Unit, st *routing.Storage) []string {
	var out []string
	if z := routing.SingleZone(u.LogicAddrs, u.LogicZones); z != "" {
		out = append(out, fmt.Sprintf("every logic replica (%d) is in zone %s: losing it takes the unit down", len(u.LogicAddrs), z))
	}
	if st != nil {
		if z := st.LiveZone(); z != "" {
			out = append(out, fmt.Sprintf("its storage primary and every replica are in zone %s: losing it takes the unit's data down with nothing to fail over to", z))
		}
	}
	return out
}

// mergeZones applies changes to zones (a zone of "" removes the key) and
// returns the result, nil when empty. Validation (routing.Table.Validate,
// routing.Topology.Validate) refuses a key that is not an address or server
// of the unit and a bad zone name.
func mergeZones(zones, changes map[string]string) map[string]string {
	if len(changes) == 0 {
		return zones
	}
	m := maps.Clone(zones)
	if m == nil {
		m = map[string]string{}
	}
	for k, z := range changes {
		if z == "" {
			delete(m, k)
		} else {
			m[k] = z
		}
	}
	if len(m) == 0 {
		return nil
	}
	return m
}

// setStorageZones sets the zones of the unit's storage servers in the
// topology (a zone of "" removes one).
func (a *Admin) setStorageZones(ctx context.Context, id tradeunit.UnitID, zones map[string]string) error {
	if a.Topology == nil {
		return paramErrorf("unit %d: no storage topology beside the routing table to set storage zones in", id)
	}
	var what []string
	for _, k := range slices.Sorted(maps.Keys(zones)) {
		what = append(what, k+"="+zones[k])
	}
	_, err := a.updateStorage(ctx, fmt.Sprintf("unit set %d storage-zone %s", id, strings.Join(what, " ")), func(t *routing.Topology) error {
		u, ok := t.Unit(id)
		if !ok {
			return paramErrorf("unit %d has no storage in the storage topology", id)
		}
		u.Zones = mergeZones(u.Zones, zones)
		return nil
	})
	return err
}
