// Package tradeunit holds the domain of a unitized order system: orders,
// refunds, their states and rules, the errors callers branch on, and the
// interfaces that storage and transport adapters implement.
//
// A transaction unit is the unit of scale and of failure: stateless logic
// services over one storage of its own. Every order lives in exactly one unit,
// whose number is written into the order number (see package orderno), and all
// of an order's changes commit in one local transaction of that unit.
//
// This package imports only the standard library; adapters depend on it, never
// the reverse.
package tradeunit

import (
	"strconv"
)

// UnitID is a transaction unit's number. Unit numbers only grow: a number is
// never reused for another unit, so an order number stays routable forever.
type UnitID uint32

// MaxUnitID is the largest unit number an order number can carry.
const MaxUnitID UnitID = 99999

// String returns the unit number in decimal.
func (u UnitID) String() string { return strconv.FormatUint(uint64(u), 10) }

// Validate reports whether u can be written into an order number.
func (u UnitID) Validate() error {
	if u == 0 || u > MaxUnitID {
		return Errorf(CodeParamError, "unit number %d out of range 1..%d", u, MaxUnitID)
	}
	return nil
}
