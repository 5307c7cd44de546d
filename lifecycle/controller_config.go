package lifecycle

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"tradeunit"
	"tradeunit/dsn"
)

// ControllerConfig is the lifecycle controller's policy and pace. Start from
// DefaultControllerConfig. A threshold of 0 turns its trigger off.
type ControllerConfig struct {
	// Every is the time between two rounds.
	Every time.Duration
	// MaxOrders warms a hot unit holding at least this many orders.
	MaxOrders int64
	// MaxBytes warms a hot unit whose storage is at least this large.
	MaxBytes int64
	// MaxAge warms a hot unit whose oldest order is at least this old
	// (by the time field of its order number).
	MaxAge time.Duration
	// MinHot is the fewest units of a partition that are hot and accept
	// new orders (masked ones included: a mask is temporary) below which
	// the controller adds fresh units. Apart from it, every unit warmed
	// is replaced one for one, so a partition keeps the hot capacity it
	// had: see Controller.
	MinHot int
	// CoolBelow and CoolAfter: a warm unit whose change rate (outbox
	// events per second over CoolWindow) stayed below CoolBelow for
	// CoolAfter is moved to cold storage.
	CoolBelow  float64
	CoolWindow time.Duration
	CoolAfter  time.Duration
	// MaxUnits caps the units of the table (0: none): at the cap no fresh
	// unit is added, so a unit past its thresholds stays hot — a budget of
	// processes and storages, which `tradeunit dev` uses.
	MaxUnits int
	// MaxMoves bounds the moves to cold storage under way at once: each
	// reads and writes a unit's whole data set.
	MaxMoves int
	// FreshStorage is the storage of a fresh unit and ColdStorage the cold
	// storage of a cooled one: DSN templates in which {unit} stands for
	// the unit number.
	FreshStorage Template
	ColdStorage  Template
	// Off stops every automatic action; the controller still measures
	// and exports its metrics. Per unit, the label lifecycle=off does the
	// same at run time (see OffLabel).
	Off bool
	// LockRetry is how often a standby controller tries a table file's
	// lock; LeaseTTL is how long an etcd election lease lasts unrenewed:
	// how soon a standby takes over from a dead controller.
	LockRetry time.Duration
	LeaseTTL  time.Duration
	// Now is the clock.
	Now func() time.Time
}

// DefaultControllerConfig returns the policy tradeunit lifecycle starts with: units
// warm at 50 million orders, 200 GiB or 90 days, and cool after a day
// below one change a minute.
func DefaultControllerConfig() ControllerConfig {
	return ControllerConfig{
		Every: time.Minute, MaxOrders: 50_000_000, MaxBytes: 200 << 30, MaxAge: 90 * 24 * time.Hour,
		MinHot: 1, CoolBelow: 1.0 / 60, CoolWindow: 10 * time.Minute, CoolAfter: 24 * time.Hour, MaxMoves: 1,
		FreshStorage: "sqlite:data/unit-{unit}.db", ColdStorage: "sqlite:data/cold/unit-{unit}.db",
		LockRetry: time.Second, LeaseTTL: 10 * time.Second, Now: time.Now,
	}
}

// Validate reports a bad setting; it changes nothing. Errors: PARAM_ERROR.
func (c ControllerConfig) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, tradeunit.Errorf(tradeunit.CodeParamError, "lifecycle: "+format, args...))
	}
	if c.Every <= 0 || c.CoolWindow <= 0 || c.LockRetry <= 0 {
		bad("every, cool window and lock retry must be positive, got %s, %s, %s", c.Every, c.CoolWindow, c.LockRetry)
	}
	if c.LeaseTTL < time.Second {
		bad("lease TTL must be at least 1s (etcd counts it in seconds), got %s", c.LeaseTTL)
	}
	if c.MaxOrders < 0 || c.MaxBytes < 0 || c.MaxAge < 0 || c.CoolBelow < 0 || c.CoolAfter < 0 {
		bad("thresholds must not be negative (0 turns one off)")
	}
	if c.MaxUnits < 0 {
		bad("max units must not be negative, got %d", c.MaxUnits)
	}
	if c.MinHot < 1 || c.MaxMoves < 1 {
		bad("min hot and max moves must be at least 1, got %d and %d", c.MinHot, c.MaxMoves)
	}
	for _, t := range []struct {
		name string
		t    Template
	}{{"fresh storage", c.FreshStorage}, {"cold storage", c.ColdStorage}} {
		if _, err := t.t.DSN(1); err != nil {
			bad("%s: %s", t.name, tradeunit.ErrorMessage(err))
		}
	}
	if c.Now == nil {
		bad("no clock")
	}
	return errors.Join(errs...)
}

// Template is a storage DSN in which {unit} stands for a unit number:
// "sqlite:data/unit-{unit}.db", "mysql:tradeunit@tcp(127.0.0.1:3306)/tradeunit_u{unit}".
type Template string

// DSN returns the template's DSN for unit id. Errors: PARAM_ERROR for a
// template without {unit} (every unit would share one storage) or whose
// result does not parse.
func (t Template) DSN(id tradeunit.UnitID) (dsn.DSN, error) {
	if !strings.Contains(string(t), "{unit}") {
		return dsn.DSN{}, tradeunit.Errorf(tradeunit.CodeParamError, "storage template %q has no {unit}", t)
	}
	return dsn.Parse(strings.ReplaceAll(string(t), "{unit}", strconv.FormatUint(uint64(id), 10)))
}
