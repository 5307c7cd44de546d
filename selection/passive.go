package selection

import (
	"fmt"
	"sync"
	"time"

	"tradeunit"
	"tradeunit/internal/ewma"
)

// PassiveConfig tunes a Passive view. Start from DefaultPassiveConfig.
type PassiveConfig struct {
	// Failures is how many consecutive failed calls make a unit failing.
	Failures int
	// Hold is how long a failing unit stays failing after its last failure.
	// Then one call is let through again: if it fails, the unit is failing
	// again at once; if it succeeds, the count restarts.
	Hold time.Duration
	// Alpha is the weight of a new sample in the latency EWMA, in (0, 1].
	Alpha float64
	Now   func() time.Time // the clock; time.Now if nil
}

// DefaultPassiveConfig returns the proxy's defaults: a unit whose last 3
// calls failed is suspect for 5 s.
func DefaultPassiveConfig() PassiveConfig {
	return PassiveConfig{Failures: 3, Hold: 5 * time.Second, Alpha: 0.2}
}

// Validate reports a bad setting; it changes nothing.
func (c PassiveConfig) Validate() error {
	if c.Failures < 1 || c.Hold <= 0 || !(c.Alpha > 0 && c.Alpha <= 1) {
		return fmt.Errorf("selection: passive view needs Failures ≥ 1, Hold > 0 and Alpha in (0, 1], got %d, %v, %v", c.Failures, c.Hold, c.Alpha)
	}
	return nil
}

// Passive is a proxy's own view of each unit, kept from the outcome of every
// call it makes: consecutive failures (a transport failure or a fault of the
// unit; a business error such as ORDER_PAID is an answer, so a success) and
// the latency EWMA of successful calls. It is what the proxy knows without
// the health checker, and what it falls back on when the checker cannot be
// reached or is in panic.
type Passive struct {
	cfg PassiveConfig

	mu    sync.Mutex
	units map[tradeunit.UnitID]*passiveUnit
}

type passiveUnit struct {
	consecutive int
	lastFailure time.Time
	latency     ewma.Latency // of the successful calls
}

// NewPassive returns an empty Passive view. Errors: those of Validate.
func NewPassive(cfg PassiveConfig) (*Passive, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Passive{cfg: cfg, units: map[tradeunit.UnitID]*passiveUnit{}}, nil
}

// Record notes the outcome of one call to u. It reports whether u's failing
// state changed, so that the caller can rebuild its plan at once.
func (p *Passive) Record(u tradeunit.UnitID, ok bool, latency time.Duration) (changed bool) {
	now := p.cfg.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.units[u]
	if s == nil {
		s = &passiveUnit{}
		p.units[u] = s
	}
	before := p.failing(s, now)
	if ok {
		s.consecutive = 0
		s.latency.Observe(latency, p.cfg.Alpha)
	} else {
		s.consecutive++
		s.lastFailure = now
	}
	return p.failing(s, now) != before
}

func (p *Passive) failing(s *passiveUnit, now time.Time) bool {
	return s.consecutive >= p.cfg.Failures && now.Sub(s.lastFailure) < p.cfg.Hold
}

// Snapshot returns the view of every unit called so far, and the earliest
// time at which a failing unit's hold ends (zero if none), when the view
// changes without a call.
func (p *Passive) Snapshot() (map[tradeunit.UnitID]Observed, time.Time) {
	now := p.cfg.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[tradeunit.UnitID]Observed, len(p.units))
	var next time.Time
	for u, s := range p.units {
		o := Observed{Failing: p.failing(s, now), Latency: s.latency.Value()}
		if o.Failing {
			o.Failures = s.consecutive
			if end := s.lastFailure.Add(p.cfg.Hold); next.IsZero() || end.Before(next) {
				next = end
			}
		}
		out[u] = o
	}
	return out, next
}
