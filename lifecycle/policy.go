package lifecycle

import (
	"fmt"
	"strconv"
	"time"

	"tradeunit"
	"tradeunit/orderno"
	"tradeunit/routing"
	"tradeunit/store/sqlstore"
)

// OffLabel is the unit label that takes a unit out of the controller's
// hands at run time: with lifecycle=off it is never warmed, replaced or
// cooled (it still counts toward its partition's hot units).
const OffLabel = "lifecycle"

// ReplacesLabel marks a fresh unit the controller added to replace the hot
// unit it names (lifecycle.replaces=N): N is warmed once its replacement
// takes new orders. It is how the decision survives a restart or a
// takeover by another controller without any state of its own.
const ReplacesLabel = "lifecycle.replaces"

// off reports whether u carries lifecycle=off.
func off(u *routing.Unit) bool { return u.Labels[OffLabel] == "off" }

func isHot(u *routing.Unit) bool { return u.Temperature == routing.Hot || u.Temperature == "" }

// capacity reports whether u counts toward its partition's hot units: hot
// and accepting new orders, available or not (a fresh unit waits for its
// logic services; a masked one comes back).
func capacity(u *routing.Unit) bool { return isHot(u) && u.AcceptNew }

// warmReason says why hot unit u with activity a must warm at now, or ""
// if it need not: the first threshold it passed, with the figure.
func (c *ControllerConfig) warmReason(a sqlstore.Activity, now time.Time) string {
	if c.MaxOrders > 0 && a.Orders >= c.MaxOrders {
		return fmt.Sprintf("%d orders, threshold %d", a.Orders, c.MaxOrders)
	}
	if c.MaxBytes > 0 && a.Bytes >= c.MaxBytes {
		return fmt.Sprintf("storage %d bytes, threshold %d", a.Bytes, c.MaxBytes)
	}
	if c.MaxAge > 0 && a.Oldest != "" {
		// An order number that does not parse has no age: no reason to
		// warm, and Round logs it.
		if no, err := orderno.Parse(a.Oldest); err == nil {
			if age := now.Sub(no.Time); age >= c.MaxAge {
				return fmt.Sprintf("oldest order %s is %s old, threshold %s", a.Oldest, age.Truncate(time.Second), c.MaxAge)
			}
		}
	}
	return ""
}

// replacement returns the unit that replaces id in t (see ReplacesLabel):
// one that is, or will be, hot capacity. One that was warmed or drained
// meanwhile replaces nothing, and another is added.
func replacement(t *routing.Table, id tradeunit.UnitID) (*routing.Unit, bool) {
	want := strconv.FormatUint(uint64(id), 10)
	for i := range t.Units {
		if u := &t.Units[i]; u.Labels[ReplacesLabel] == want && capacity(u) {
			return u, true
		}
	}
	return nil, false
}

// partitions returns, for every partition the controller looks after
// (one with a hot unit not labelled off), how many of its units count as
// hot capacity.
func partitions(t *routing.Table) map[string]int {
	out := map[string]int{}
	for i := range t.Units {
		if u := &t.Units[i]; isHot(u) && !off(u) {
			out[u.Partition] += 0
		}
	}
	for i := range t.Units {
		if u := &t.Units[i]; capacity(u) {
			if _, ok := out[u.Partition]; ok {
				out[u.Partition]++
			}
		}
	}
	return out
}

// takesNew reports whether a unit of partition other than except takes new
// orders now.
func takesNew(t *routing.Table, partition string, except tradeunit.UnitID) bool {
	for i := range t.Units {
		if u := &t.Units[i]; u.Partition == partition && u.ID != except && u.TakesNewOrders() {
			return true
		}
	}
	return false
}

// nextUnit is the number of a fresh unit: above every unit of the table
// and of the storage topology (an entry a failed add left behind is never
// reused: its storage may be someone else's half-finished add).
func nextUnit(t *routing.Table, top *routing.Topology) tradeunit.UnitID {
	var n tradeunit.UnitID
	for _, u := range t.Units {
		n = max(n, u.ID)
	}
	for _, u := range top.Units {
		n = max(n, u.Unit)
	}
	return n + 1
}
