package health

import (
	"fmt"
	"testing"
	"time"

	"tradeunit"
)

var t0 = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

func testPolicy() Policy {
	p := DefaultPolicy()
	p.BaseEjection, p.MaxEjection = 10*time.Second, 40*time.Second
	return p
}

// probes feeds a unit a pattern of probe results, one per second from at:
// '.' passes, 'x' fails.
func probes(p *Policy, s *unitStats, at time.Time, pattern string) time.Time {
	for _, c := range pattern {
		s.observe(p, c == '.', 5*time.Millisecond, "boom", at)
		at = at.Add(time.Second)
	}
	return at
}

func TestFailing(t *testing.T) {
	p := testPolicy()
	tests := []struct {
		pattern string
		want    bool
	}{
		{"", false},
		{"xx", false},
		{"xxx", true},                       // FailuresToEject in a row
		{"xxx.", false},                     // a pass resets the run
		{"x.x.x.x.x.x", true},               // 50% over 11 probes, the last failed
		{"x.x.x.x.x.", false},               // 50%, but the last passed: not for its history
		{"x.x.x.x.x", false},                // only 9 probes: too few to judge a rate
		{"....x....x....x", false},          // 80%: not below the threshold
		{"....x...x....x.xx", true},         // 70%, the last failed
		{"xxxxxxxxx" + rep(".", 30), false}, // the window forgets
	}
	for _, tt := range tests {
		var s unitStats
		probes(&p, &s, t0, tt.pattern)
		if got := s.failing(&p); got != tt.want {
			rate, n := s.successRate()
			t.Errorf("%q: failing %v (rate %.2f of %d), want %v", tt.pattern, got, rate, n, tt.want)
		}
	}
}

func rep(s string, n int) string {
	out := ""
	for i := 0; i < n; i++ {
		out += s
	}
	return out
}

func TestLatencyStats(t *testing.T) {
	p := testPolicy()
	var s unitStats
	for i := 1; i <= 100; i++ {
		s.observe(&p, true, time.Duration(i)*time.Millisecond, "", t0)
	}
	if got := s.p99(); got != 100*time.Millisecond {
		t.Errorf("p99 of the last 30 of 1..100ms: got %v, want 100ms", got)
	}
	s = unitStats{}
	s.observe(&p, true, 80*time.Millisecond, "", t0)
	if s.latency.Value() != 0 {
		t.Errorf("the first passing probe, which paid for the connection, seeded the EWMA: %v", s.latency.Value())
	}
	s.observe(&p, true, 10*time.Millisecond, "", t0)
	s.observe(&p, true, 20*time.Millisecond, "", t0)
	if got := s.latency.Value(); got != 13*time.Millisecond {
		t.Errorf("EWMA after 80ms (first), 10ms, 20ms with alpha 0.3: got %v, want 13ms", got)
	}
	s.observe(&p, false, time.Hour, "timeout", t0)
	if s.latency.Value() != 13*time.Millisecond || s.p99() != 80*time.Millisecond {
		t.Errorf("a failed probe changed the latency: ewma %v p99 %v", s.latency.Value(), s.p99())
	}
}

// TestEjectionBackoff walks one unit through ejection, return, and
// flapping: each ejection doubles the back-off, up to the maximum, and a
// long healthy spell resets it.
func TestEjectionBackoff(t *testing.T) {
	p := testPolicy()
	s := &unitStats{}
	units := map[tradeunit.UnitID]*unitStats{1: s, 2: {}, 3: {}, 4: {}}
	at := t0
	step := func(pattern string) partitionVerdict {
		t.Helper()
		var v partitionVerdict
		for _, c := range pattern {
			at = probes(&p, s, at, string(c))
			v = judge(&p, units, at)
		}
		return v
	}
	wantBackoff := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 40 * time.Second}
	for i, want := range wantBackoff {
		v := step("xxx")
		if !s.ejected || v.ejected != 1 {
			t.Fatalf("ejection %d: ejected %v (%+v), want ejected", i+1, s.ejected, v)
		}
		if got := s.ejectedUntil.Sub(s.ejectedSince); got != want {
			t.Fatalf("ejection %d: back-off %v, want %v", i+1, got, want)
		}
		// Passing probes during the back-off do not bring it back early.
		step(rep(".", int(want/time.Second)-1))
		if !s.ejected {
			t.Fatalf("ejection %d: returned before its back-off of %v", i+1, want)
		}
		step("...")
		if s.ejected {
			t.Fatalf("ejection %d: still out after its back-off and 3 passes", i+1)
		}
		// Passes during the back-off counted: it returned at its end, and its
		// window restarted then, without the failures that ejected it.
		if rate, n := s.successRate(); rate != 1 || n >= 3 {
			t.Fatalf("ejection %d: window not cleared on return (%d samples, rate %v)", i+1, n, rate)
		}
	}
	// Healthy for MaxEjection: the next ejection starts from the base again.
	step(rep(".", 40))
	step("xxx")
	if got := s.ejectedUntil.Sub(s.ejectedSince); got != 10*time.Second {
		t.Fatalf("after a long healthy spell: back-off %v, want 10s", got)
	}
}

func TestJudgeBoundsEjections(t *testing.T) {
	p := testPolicy()
	tests := []struct {
		patterns    []string // one per unit
		wantEjected []bool
		wantPanic   bool
	}{
		{[]string{"...", "...", "...", "..."}, []bool{false, false, false, false}, false},
		{[]string{"xxx", "...", "...", "..."}, []bool{true, false, false, false}, false},
		{[]string{"xxx", "xxx", "...", "..."}, []bool{true, true, false, false}, false},
		// Three of four look bad: at most two go, the worst first; panic.
		{[]string{"xxx", "xxxxx", "xxxx", "..."}, []bool{false, true, true, false}, true},
		{[]string{"xxx", "xxx", "xxx", "xxx"}, []bool{true, true, false, false}, true},
		// One unit: never ejected.
		{[]string{"xxxxx"}, []bool{false}, true},
		{[]string{"xxx", "..."}, []bool{true, false}, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.patterns), func(t *testing.T) {
			units := map[tradeunit.UnitID]*unitStats{}
			for i, pat := range tt.patterns {
				s := &unitStats{}
				probes(&p, s, t0, pat)
				units[tradeunit.UnitID(i+1)] = s
			}
			v := judge(&p, units, t0.Add(time.Minute))
			for i, want := range tt.wantEjected {
				if got := units[tradeunit.UnitID(i+1)].ejected; got != want {
					t.Errorf("unit %d: ejected %v, want %v", i+1, got, want)
				}
			}
			if v.panic != tt.wantPanic || v.ejected > v.maxEjected {
				t.Errorf("verdict %+v, want panic %v and at most max ejected", v, tt.wantPanic)
			}
		})
	}
}
