package routing

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"
	"unicode"
	"unicode/utf8"

	"tradeunit"
)

// Well-known partitions. Partitions group units so that merchants of one
// kind get units, machines and bandwidth of their own (differentiated
// service). Any name matching [a-z0-9_-]{1,32} may be used; these three have
// a meaning beyond their units.
const (
	// KeyPartition is the usual name of the key merchants' partition.
	KeyPartition = "key"
	// PreReleasePartition holds the units of the first canary step: it
	// serves only the merchants mapped to it, and no partition may spill
	// into it.
	PreReleasePartition = "prerelease"
)

// NoUnitPolicy says what a create does when its partition has no unit that
// can take it.
type NoUnitPolicy string

// The policies of a partition with no unit left.
const (
	// Refuse fails the create with NO_UNIT_AVAILABLE naming the partition.
	Refuse NoUnitPolicy = "refuse"
	// Spill sends the create to the units of the partition named by
	// Partition.SpillTo.
	Spill NoUnitPolicy = "spill"
)

// Partition is the policy of one partition. The zero value refuses when the
// partition has no unit and sends no canary traffic.
type Partition struct {
	// OnNoUnit is Refuse (the default when empty) or Spill.
	OnNoUnit NoUnitPolicy `json:"on_no_unit,omitempty"`
	// SpillTo names the partition that takes this partition's new orders
	// when none of its own units can; set only with OnNoUnit Spill. Spilling
	// is one hop: the spill partition's own policy is not followed.
	SpillTo string `json:"spill_to,omitempty"`
	// Canary, if set, sends a share of the partition's new orders to its
	// units carrying a release label.
	Canary *Canary `json:"canary,omitempty"`
}

// Canary sends Share (0..1) of a partition's new orders to the partition's
// units whose Labels[Label] is Value, and the rest to its other units. A
// release is rolled out by raising Share step by step (one admin command per
// step) and finished by labelling every unit.
type Canary struct {
	Label string  `json:"label"`
	Value string  `json:"value"`
	Share float64 `json:"share"`
}

// Matches reports whether u carries the canary's release label.
func (c *Canary) Matches(u *Unit) bool { return c != nil && u.Labels[c.Label] == c.Value }

// BlacklistEntry blocks a unit from taking new orders, by an operator's
// decision: to drain it, keep a canary off it, or move it between hot and
// cold. Calls for the unit's existing orders are still routed to it (mask a
// failed unit with Unit.Available instead). Every proxy honours a change
// within a second, and the health checker's API shows the entry.
type BlacklistEntry struct {
	Unit   tradeunit.UnitID `json:"unit"`
	Reason string           `json:"reason"`
	By     string           `json:"by,omitempty"`   // who set it
	Since  time.Time        `json:"since,omitzero"` // when it was set
	Until  time.Time        `json:"until,omitzero"` // when it expires; zero: when removed
}

// Active reports whether the entry blocks its unit at now.
func (e *BlacklistEntry) Active(now time.Time) bool { return e.Until.IsZero() || now.Before(e.Until) }

// PartitionOf returns the partition of a merchant's new orders:
// the one the table maps it to, DefaultPartition if none.
func (t *Table) PartitionOf(mchid string) string {
	if p, ok := t.Merchants[mchid]; ok {
		return p
	}
	return DefaultPartition
}

// Policy returns the policy of a partition (the zero Partition if the table
// sets none).
func (t *Table) Policy(partition string) Partition { return t.Partitions[partition] }

// Blacklisted returns the unit's blacklist entry if one blocks it at now.
func (t *Table) Blacklisted(id tradeunit.UnitID, now time.Time) (*BlacklistEntry, bool) {
	for i := range t.Blacklist {
		if e := &t.Blacklist[i]; e.Unit == id {
			return e, e.Active(now)
		}
	}
	return nil, false
}

// BlacklistEntryOf returns the unit's blacklist entry, expired or not.
func (t *Table) BlacklistEntryOf(id tradeunit.UnitID) (*BlacklistEntry, bool) {
	for i := range t.Blacklist {
		if t.Blacklist[i].Unit == id {
			return &t.Blacklist[i], true
		}
	}
	return nil, false
}

// SetBlacklist adds or replaces the entry of e.Unit and returns the entry it
// replaced, if any. Call it on a clone (see UpdateFile).
func (t *Table) SetBlacklist(e BlacklistEntry) (previous *BlacklistEntry) {
	for i := range t.Blacklist {
		if t.Blacklist[i].Unit == e.Unit {
			old := t.Blacklist[i]
			t.Blacklist[i] = e
			return &old
		}
	}
	t.Blacklist = append(t.Blacklist, e)
	slices.SortFunc(t.Blacklist, func(a, b BlacklistEntry) int { return cmp.Compare(a.Unit, b.Unit) })
	return nil
}

// RemoveBlacklist removes the unit's entry and returns it, if there was one.
func (t *Table) RemoveBlacklist(id tradeunit.UnitID) (removed *BlacklistEntry) {
	for i := range t.Blacklist {
		if t.Blacklist[i].Unit == id {
			old := t.Blacklist[i]
			t.Blacklist = slices.Delete(t.Blacklist, i, i+1)
			return &old
		}
	}
	return nil
}

// PartitionNames returns every partition the table knows, sorted: those of
// its units, those it sets a policy for, and DefaultPartition.
func (t *Table) PartitionNames() []string {
	set := map[string]bool{DefaultPartition: true}
	for i := range t.Units {
		set[t.Units[i].partition()] = true
	}
	for p := range t.Partitions {
		set[p] = true
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// validatePolicy checks the partitions, merchants and blacklist; see
// Validate.
func (t *Table) validatePolicy() error {
	known := map[string]bool{}
	for _, p := range t.PartitionNames() {
		known[p] = true
	}
	for _, name := range sortedKeys(t.Partitions) {
		if err := t.Partitions[name].validate(name, known); err != nil {
			return err
		}
	}
	for _, mchid := range sortedKeys(t.Merchants) {
		p := t.Merchants[mchid]
		if err := tradeunit.ValidateMchid(mchid); err != nil {
			return policyErrorf("merchants[%q]: %s", mchid, tradeunit.ErrorMessage(err))
		}
		if tradeunit.IsProbe(mchid) {
			return policyErrorf("merchants[%q]: reserved for the health checker's probe orders", mchid)
		}
		if !validPartition(p) {
			return policyErrorf("merchants[%q]: partition %q must match [a-z0-9_-]{1,32}", mchid, p)
		}
		if !known[p] {
			return policyErrorf("merchants[%q]: partition %q has no unit and no policy (declare it under partitions first)", mchid, p)
		}
	}
	seen := map[tradeunit.UnitID]bool{}
	for i := range t.Blacklist {
		e := &t.Blacklist[i]
		if _, ok := t.Unit(e.Unit); !ok {
			return policyErrorf("blacklist[%d]: unit %d is not in the table", i, e.Unit)
		}
		if seen[e.Unit] {
			return policyErrorf("blacklist[%d]: unit %d is listed twice", i, e.Unit)
		}
		seen[e.Unit] = true
		if err := validateNote(e.Reason, 1, 200); err != "" {
			return policyErrorf("blacklist[%d] (unit %d): reason %s", i, e.Unit, err)
		}
		if err := validateNote(e.By, 0, 64); err != "" {
			return policyErrorf("blacklist[%d] (unit %d): by %s", i, e.Unit, err)
		}
		if !e.Until.IsZero() && !e.Since.IsZero() && !e.Until.After(e.Since) {
			return policyErrorf("blacklist[%d] (unit %d): until %s is not after since %s", i, e.Unit,
				e.Until.Format(time.RFC3339), e.Since.Format(time.RFC3339))
		}
	}
	return nil
}

func (p Partition) validate(name string, known map[string]bool) error {
	if !validPartition(name) {
		return policyErrorf("partitions[%q]: name must match [a-z0-9_-]{1,32}", name)
	}
	switch p.OnNoUnit {
	case "", Refuse:
		if p.SpillTo != "" {
			return policyErrorf("partitions[%q].spill_to is set but on_no_unit is not %q", name, Spill)
		}
	case Spill:
		switch {
		case p.SpillTo == "":
			return policyErrorf("partitions[%q].spill_to: on_no_unit %q needs a partition to spill to", name, Spill)
		case p.SpillTo == name:
			return policyErrorf("partitions[%q].spill_to: a partition cannot spill to itself", name)
		case p.SpillTo == PreReleasePartition:
			return policyErrorf("partitions[%q].spill_to: nothing may spill into %q, which serves only its own merchants", name, PreReleasePartition)
		case !known[p.SpillTo]:
			return policyErrorf("partitions[%q].spill_to: unknown partition %q", name, p.SpillTo)
		}
	default:
		return policyErrorf("partitions[%q].on_no_unit %q must be %q or %q", name, p.OnNoUnit, Refuse, Spill)
	}
	if c := p.Canary; c != nil {
		if !validLabel(c.Label) {
			return policyErrorf("partitions[%q].canary.label %q must match [A-Za-z0-9_./-]{1,63}", name, c.Label)
		}
		if !validLabel(c.Value) {
			return policyErrorf("partitions[%q].canary.value %q must match [A-Za-z0-9_./-]{1,63}", name, c.Value)
		}
		if math.IsNaN(c.Share) || c.Share < 0 || c.Share > 1 {
			return policyErrorf("partitions[%q].canary.share %v must be between 0 and 1", name, c.Share)
		}
	}
	return nil
}

func policyErrorf(format string, args ...any) error {
	return tradeunit.Errorf(tradeunit.CodeParamError, "routing table: %s", fmt.Sprintf(format, args...))
}

// validLabel reports whether s matches [A-Za-z0-9_./-]{1,63}.
func validLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '/' || c == '-') {
			return false
		}
	}
	return true
}

// validateNote checks free text written by an operator; it returns what is
// wrong, or "".
func validateNote(s string, minRunes, maxRunes int) string {
	if !utf8.ValidString(s) {
		return "must be valid UTF-8"
	}
	if n := utf8.RuneCountInString(s); n < minRunes || n > maxRunes {
		return fmt.Sprintf("must be %d to %d characters, got %d", minRunes, maxRunes, n)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return "must not contain control characters"
		}
	}
	return ""
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
