package routing

import (
	"slices"

	"tradeunit"
)

// A zone is a machine room (or availability zone): a failure domain that
// can be lost as a whole. Units name the zone of each logic replica
// (Unit.LogicZones) and the topology the zone of each storage server
// (Storage.Zones), so that a proxy prefers the replicas near it and an
// operator sees which units one room's loss would take down.

// ValidZone reports whether z is a zone name: [a-z0-9_-]{1,32}, the
// partition names' alphabet, so zones print and parse as plainly.
func ValidZone(z string) bool { return validPartition(z) }

// validateZones checks that every key of LogicZones is one of the unit's
// logic addresses (a zone for an address the unit does not have is a typo
// that would silently prefer nothing) and every zone is a valid name.
func (u *Unit) validateZones() error {
	for _, addr := range sortedKeys(u.LogicZones) {
		if !slices.Contains(u.LogicAddrs, addr) {
			return unitErrorf(u, "logic_zones[%q]: not one of the unit's logic_addrs", addr)
		}
		if z := u.LogicZones[addr]; !ValidZone(z) {
			return unitErrorf(u, "logic_zones[%q]: zone %q must match [a-z0-9_-]{1,32}", addr, z)
		}
	}
	return nil
}

// LogicByZone orders the unit's logic addresses for a caller in zone: near
// are those in zone, far the others, each in LogicAddrs order, and the
// replicas in an evacuated zone come last of all, as a last resort. With
// no zone, or no address in it, near is every address outside the
// evacuated zones: a proxy without a zone (or far from all of them)
// behaves as before zones existed.
func (u *Unit) LogicByZone(zone string, evacuated []string) (near, far []string) {
	if len(u.LogicZones) == 0 || zone == "" && len(evacuated) == 0 {
		return u.LogicAddrs, nil
	}
	var last []string
	for _, a := range u.LogicAddrs {
		z, known := u.LogicZones[a]
		switch {
		case known && slices.Contains(evacuated, z):
			last = append(last, a)
		case known && z == zone:
			near = append(near, a)
		default:
			far = append(far, a)
		}
	}
	if len(near) == 0 {
		near, far = far, nil
	}
	if len(near) == 0 {
		return last, nil
	}
	return near, append(far, last...)
}

// OnlyInEvacuatedZones reports whether every logic replica of u is in a
// zone of t.EvacuatedZones: such a unit takes no new orders (its orders are
// still served there, since there is nowhere else to serve them).
func (t *Table) OnlyInEvacuatedZones(u *Unit) bool {
	if len(t.EvacuatedZones) == 0 || len(u.LogicAddrs) == 0 {
		return false
	}
	for _, a := range u.LogicAddrs {
		if z, ok := u.LogicZones[a]; !ok || !slices.Contains(t.EvacuatedZones, z) {
			return false
		}
	}
	return true
}

// SingleZone returns the zone every one of addrs is in, when they are all
// known and share one, and "" otherwise: such a group (a unit's logic
// replicas, or its storage servers) is lost with that one zone. A single
// address counts, since it is lost with its zone too.
func SingleZone(addrs []string, zones map[string]string) string {
	zone := ""
	for _, a := range addrs {
		z, ok := zones[a]
		if !ok || zone != "" && z != zone {
			return ""
		}
		zone = z
	}
	return zone
}

// validateZones checks the storage's zones: every key is the server of the
// primary, a replica or a fenced server, and every zone a valid name.
func (s *Storage) validateZones(owner string) error {
	servers := s.Servers()
	for _, server := range sortedKeys(s.Zones) {
		if !slices.Contains(servers, server) {
			return tradeunit.Errorf(tradeunit.CodeParamError, "storage topology: %s: zones[%q]: not the server of the primary, a replica or a fenced server", owner, server)
		}
		if z := s.Zones[server]; !ValidZone(z) {
			return tradeunit.Errorf(tradeunit.CodeParamError, "storage topology: %s: zones[%q]: zone %q must match [a-z0-9_-]{1,32}", owner, server, z)
		}
	}
	return nil
}

// Servers returns the servers (DSN.Server) of the primary, the replicas and
// the fenced servers, in that order; the keys Zones may use.
func (s *Storage) Servers() []string {
	var out []string
	if s.HasPrimary() {
		out = append(out, s.Primary.Server())
	}
	for _, r := range s.Replicas {
		out = append(out, r.Server())
	}
	for _, f := range s.Fenced {
		out = append(out, f.Server())
	}
	return out
}

// LiveZone returns the zone all of the storage's live servers (the primary
// and its replicas; fenced servers serve nothing) share, or "" if they are
// not all known to be in one.
func (s *Storage) LiveZone() string {
	servers := s.Servers()
	return SingleZone(servers[:len(servers)-len(s.Fenced)], s.Zones)
}
