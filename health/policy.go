package health

import (
	"errors"
	"math"
	"slices"
	"sort"
	"time"

	"tradeunit"
	"tradeunit/internal/ewma"
)

// Policy decides when a unit is ejected and when it returns. Start from
// DefaultPolicy: every field is used as it is, zeros included.
type Policy struct {
	// Window is how many recent probes the success rate and the latency
	// p99 cover.
	Window int
	// FailuresToEject ejects a unit after this many consecutive failed
	// probes.
	FailuresToEject int
	// MinSuccessRate ejects a unit whose success rate over the window falls
	// below it when a probe fails, once the window holds MinSamples probes:
	// a unit failing one probe in three is ejected too. 0 turns this rule
	// off.
	MinSuccessRate float64
	MinSamples     int
	// SuccessesToReturn is how many consecutive passing probes an ejected
	// unit needs, after its back-off, to return.
	SuccessesToReturn int
	// BaseEjection is the back-off of a first ejection; each further
	// ejection doubles it, up to MaxEjection, so a unit that flaps stays out
	// longer and longer. A unit that stays healthy for MaxEjection starts
	// again from BaseEjection.
	BaseEjection time.Duration
	MaxEjection  time.Duration
	// MaxEjectShare bounds the share of a partition's units that may be
	// ejected at once. When more look bad together (a network blip, the
	// checker's own host failing) the partition is in panic: no further
	// unit is ejected, and proxies ignore the checker's verdicts for the
	// partition. 0 ejects nothing.
	MaxEjectShare float64
	// Alpha is the weight of a new probe in the latency EWMA, in (0, 1].
	Alpha float64
}

// DefaultPolicy returns the policy of a checker probing every second: eject
// after 3 failures in a row or under 80% over at least 10 of the last 30
// probes; return after 3 passes and a back-off of 5 s doubling to 60 s;
// never more than half of a partition.
func DefaultPolicy() Policy {
	return Policy{Window: 30, FailuresToEject: 3, MinSuccessRate: 0.8, MinSamples: 10, SuccessesToReturn: 3,
		BaseEjection: 5 * time.Second, MaxEjection: time.Minute, MaxEjectShare: 0.5, Alpha: 0.3}
}

// Validate reports the first field out of range; it changes nothing.
func (p Policy) Validate() error { return p.validate() }

func (p Policy) validate() error {
	switch {
	case p.Window < 1:
		return errors.New("health: Window must be at least 1 probe")
	case p.FailuresToEject < 1:
		return errors.New("health: FailuresToEject must be at least 1")
	case p.MinSamples < 1 || p.MinSamples > p.Window:
		return errors.New("health: MinSamples must be between 1 and Window")
	case p.SuccessesToReturn < 1:
		return errors.New("health: SuccessesToReturn must be at least 1")
	case p.BaseEjection <= 0:
		return errors.New("health: BaseEjection must be positive")
	case !(p.Alpha > 0 && p.Alpha <= 1):
		return errors.New("health: Alpha must be in (0, 1]")
	case p.MinSuccessRate < 0 || p.MinSuccessRate > 1:
		return errors.New("health: MinSuccessRate must be between 0 and 1")
	case p.MaxEjectShare < 0 || p.MaxEjectShare > 1 || math.IsNaN(p.MaxEjectShare):
		return errors.New("health: MaxEjectShare must be between 0 and 1")
	case p.MaxEjection < p.BaseEjection:
		return errors.New("health: MaxEjection must not be below BaseEjection")
	}
	return nil
}

// unitStats is what the checker knows about one unit's probes, and its
// verdict. It is changed only under the checker's lock.
type unitStats struct {
	samples []sample // ring of the last Window probes
	next    int      // where the next sample goes
	filled  bool

	consecutiveFailures  int
	consecutiveSuccesses int
	latency              ewma.Latency // of the passing probes
	lastProbe            time.Time
	lastError            string

	ejected      bool
	ejectedSince time.Time
	ejectedUntil time.Time // back-off end: the unit may return after it
	ejections    int       // recent ejections, for the back-off
	returnedAt   time.Time
}

type sample struct {
	ok      bool
	latency time.Duration
}

// observe records one probe.
func (s *unitStats) observe(p *Policy, ok bool, latency time.Duration, errText string, now time.Time) {
	if s.samples == nil {
		s.samples = make([]sample, p.Window)
	}
	s.samples[s.next] = sample{ok: ok, latency: latency}
	s.next++
	if s.next == len(s.samples) {
		s.next, s.filled = 0, true
	}
	s.lastProbe = now
	if ok {
		s.consecutiveFailures = 0
		s.consecutiveSuccesses++
		s.lastError = ""
		s.latency.Observe(latency, p.Alpha)
		return
	}
	s.consecutiveSuccesses = 0
	s.consecutiveFailures++
	s.lastError = errText
}

func (s *unitStats) window() []sample {
	if s.filled {
		return s.samples
	}
	return s.samples[:s.next]
}

// successRate returns the share of passing probes in the window and how
// many probes it holds.
func (s *unitStats) successRate() (float64, int) {
	w := s.window()
	if len(w) == 0 {
		return 1, 0
	}
	ok := 0
	for _, x := range w {
		if x.ok {
			ok++
		}
	}
	return float64(ok) / float64(len(w)), len(w)
}

// p99 returns the 99th percentile latency of the passing probes in the
// window (0 if none).
func (s *unitStats) p99() time.Duration {
	var l []time.Duration
	for _, x := range s.window() {
		if x.ok {
			l = append(l, x.latency)
		}
	}
	if len(l) == 0 {
		return 0
	}
	slices.Sort(l)
	return l[min(len(l)-1, int(math.Ceil(0.99*float64(len(l))))-1)]
}

// failing reports whether the unit's probes say it should be out:
// FailuresToEject consecutive failures, or a success rate under
// MinSuccessRate over at least MinSamples probes while its last probe
// failed. The last condition keeps a unit that passes again from being
// ejected for its history (a unit kept in during a panic, say).
func (s *unitStats) failing(p *Policy) bool {
	if s.consecutiveFailures >= p.FailuresToEject {
		return true
	}
	rate, n := s.successRate()
	return s.consecutiveFailures > 0 && n >= p.MinSamples && rate < p.MinSuccessRate
}

// eject takes the unit out for a back-off that doubles with each recent
// ejection.
func (s *unitStats) eject(p *Policy, now time.Time) {
	if !s.returnedAt.IsZero() && now.Sub(s.returnedAt) >= p.MaxEjection {
		s.ejections = 0 // healthy long enough: forget its flapping
	}
	s.ejections++
	backoff := p.BaseEjection << min(s.ejections-1, 30)
	if backoff > p.MaxEjection || backoff <= 0 {
		backoff = p.MaxEjection
	}
	s.ejected, s.ejectedSince, s.ejectedUntil = true, now, now.Add(backoff)
}

// mayReturn reports whether an ejected unit has served its back-off and
// passed SuccessesToReturn probes in a row.
func (s *unitStats) mayReturn(p *Policy, now time.Time) bool {
	return s.ejected && !now.Before(s.ejectedUntil) && s.consecutiveSuccesses >= p.SuccessesToReturn
}

// readmit brings an ejected unit back with a clean window, so the failures
// that ejected it do not eject it again through the success rate.
func (s *unitStats) readmit(now time.Time) {
	s.ejected = false
	s.ejectedSince, s.ejectedUntil = time.Time{}, time.Time{}
	s.returnedAt = now
	clear(s.samples)
	s.next, s.filled = 0, false
}

// partitionVerdict is the outcome of judging one partition.
type partitionVerdict struct {
	units      int
	bad        int // ejected, or failing while in
	ejected    int
	maxEjected int
	panic      bool
	changed    []tradeunit.UnitID // units whose verdict changed
}

// judge applies the policy to the units of one partition: it readmits
// ejected units that may return, then ejects failing units while fewer than
// ⌊MaxEjectShare × units⌋ are out, worst first. If more units are bad than
// that bound, the partition is in panic.
func judge(p *Policy, units map[tradeunit.UnitID]*unitStats, now time.Time) partitionVerdict {
	v := partitionVerdict{units: len(units), maxEjected: int(math.Floor(p.MaxEjectShare * float64(len(units))))}
	ids := make([]tradeunit.UnitID, 0, len(units))
	for id := range units {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	var candidates []tradeunit.UnitID
	for _, id := range ids {
		s := units[id]
		if s.mayReturn(p, now) {
			s.readmit(now)
			v.changed = append(v.changed, id)
		}
		switch {
		case s.ejected:
			v.ejected++
			v.bad++
		case s.failing(p):
			v.bad++
			candidates = append(candidates, id)
		}
	}
	// Worst first: most consecutive failures, then lowest success rate.
	sort.SliceStable(candidates, func(i, j int) bool {
		a, b := units[candidates[i]], units[candidates[j]]
		if a.consecutiveFailures != b.consecutiveFailures {
			return a.consecutiveFailures > b.consecutiveFailures
		}
		ra, _ := a.successRate()
		rb, _ := b.successRate()
		return ra < rb
	})
	for _, id := range candidates {
		if v.ejected >= v.maxEjected {
			break
		}
		units[id].eject(p, now)
		v.ejected++
		v.changed = append(v.changed, id)
	}
	v.panic = v.bad > v.maxEjected
	return v
}
