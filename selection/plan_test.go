package selection

import (
	"fmt"
	"testing"
	"time"

	"tradeunit"
	"tradeunit/routing"
)

func TestSpeedFactor(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		l, median time.Duration
		want      float64
	}{
		{0, 10 * ms, 1},              // unknown latency
		{10 * ms, 0, 1},              // no healthy peer to compare with
		{19 * ms, 10 * ms, 1},        // under 2× the median
		{40 * ms, 10 * ms, 1},        // 4× but within median + 50ms: loopback noise
		{70 * ms, 10 * ms, 0.25},     // 7×: ⌊log2 7⌋ = 2
		{200 * ms, 60 * ms, 0.5},     // 3.3×
		{210 * ms, 3 * ms, 1.0 / 16}, // 70×: capped at 1/16
	}
	for _, tt := range tests {
		if got := speedFactor(tt.l, tt.median); got != tt.want {
			t.Errorf("speedFactor(%v, median %v) = %v, want %v", tt.l, tt.median, got, tt.want)
		}
	}
}

func TestBuildWeights(t *testing.T) {
	units := []routing.Unit{hot(1, "normal"), hot(2, "normal"), hot(3, "normal"), hot(4, "normal")}
	units[1].Weight = 3
	tests := []struct {
		name        string
		recent      map[tradeunit.UnitID]uint64
		latency     map[tradeunit.UnitID]time.Duration
		fromChecker bool
		want        map[tradeunit.UnitID]float64
	}{
		{"quiet: static weights", map[tradeunit.UnitID]uint64{1: 3, 2: 3}, nil, false,
			map[tradeunit.UnitID]float64{1: 1, 2: 3, 3: 1, 4: 1}},
		{"new unit catches up, hot one cools", map[tradeunit.UnitID]uint64{1: 100, 2: 100, 3: 500}, nil, false,
			map[tradeunit.UnitID]float64{1: 1, 2: 3, 3: 0.5, 4: 2}},
		{"slow unit is not boosted for being quiet", map[tradeunit.UnitID]uint64{1: 100, 2: 100, 3: 100, 4: 1},
			map[tradeunit.UnitID]time.Duration{1: 3 * time.Millisecond, 2: 4 * time.Millisecond, 3: 3 * time.Millisecond, 4: 600 * time.Millisecond},
			true, map[tradeunit.UnitID]float64{1: 1, 2: 3, 3: 1, 4: 1.0 / 16}},
		{"own latency when no checker", nil,
			map[tradeunit.UnitID]time.Duration{1: 3 * time.Millisecond, 2: 4 * time.Millisecond, 3: 3 * time.Millisecond, 4: 100 * time.Millisecond},
			false, map[tradeunit.UnitID]float64{1: 1, 2: 3, 3: 1, 4: 1.0 / 16}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Inputs{Table: table(t, nil, units...), Now: now, Recent: tt.recent, Passive: map[tradeunit.UnitID]Observed{}}
			if tt.fromChecker {
				in.Checker = &CheckerView{Units: map[tradeunit.UnitID]Checked{}}
			}
			for u, l := range tt.latency {
				if tt.fromChecker {
					in.Checker.Units[u] = Checked{Latency: l}
				} else {
					in.Passive[u] = Observed{Latency: l}
				}
			}
			for _, up := range Build(in).Units() {
				if up.Weight != tt.want[up.Unit] {
					t.Errorf("unit %d: weight %v (balance %v, speed %v), want %v", up.Unit, up.Weight, up.Balance, up.Speed, tt.want[up.Unit])
				}
			}
		})
	}
}

// TestBuildBalancesWithinCanaryGroups: canary units get a share of the
// traffic by design, so they are balanced among themselves, not against the
// stable units (which would make them look idle and double them).
func TestBuildBalancesWithinCanaryGroups(t *testing.T) {
	units := []routing.Unit{hot(1, "normal"), hot(2, "normal"), hot(3, "normal"), hot(4, "normal")}
	units[2].Labels = map[string]string{"release": "v2"}
	units[3].Labels = map[string]string{"release": "v2"}
	tbl := table(t, func(tbl *routing.Table) {
		tbl.Partitions = map[string]routing.Partition{"normal": {Canary: &routing.Canary{Label: "release", Value: "v2", Share: 0.1}}}
	}, units...)
	plan := Build(Inputs{Table: tbl, Now: now, Recent: map[tradeunit.UnitID]uint64{1: 900, 2: 900, 3: 100, 4: 100}})
	for _, up := range plan.Units() {
		if up.Balance != 1 || up.Canary != (up.Unit >= 3) {
			t.Errorf("unit %d: balance %v canary %v, want 1 and %v", up.Unit, up.Balance, up.Canary, up.Unit >= 3)
		}
	}
}

func TestBuildReasons(t *testing.T) {
	units := []routing.Unit{hot(1, "normal"), hot(2, "normal"), hot(3, "normal"), hot(4, "normal")}
	units[0].Available = false
	units[1].AcceptNew = false
	units[2].Temperature = routing.Warm
	units = append(units, hot(5, "normal"), hot(6, "normal"))
	units[4].LogicZones = map[string]string{"127.0.0.1:1": "a"}
	units[5].LogicAddrs = []string{"127.0.0.1:1", "127.0.0.1:2"}
	units[5].LogicZones = map[string]string{"127.0.0.1:1": "a", "127.0.0.1:2": "b"}
	tbl := table(t, func(tbl *routing.Table) { tbl.EvacuatedZones = []string{"a"} }, units...)
	plan := Build(Inputs{Table: tbl, Now: now})
	want := []string{"unavailable", "not taking new orders (temperature hot, accept_new false)",
		"not taking new orders (temperature warm, accept_new true)", "", "every logic replica is in an evacuated zone", ""}
	for i, up := range plan.Units() {
		if up.Reason != want[i] || up.Eligible != (want[i] == "") {
			t.Errorf("unit %d: eligible %v reason %q, want %q", up.Unit, up.Eligible, up.Reason, want[i])
		}
	}
	if plan.PartitionOf("anyone") != routing.DefaultPartition {
		t.Errorf("PartitionOf: got %q", plan.PartitionOf("anyone"))
	}
	if _, err := Build(Inputs{}).Pick(nil, "m", "o", 3); tradeunit.ErrorCode(err) != tradeunit.CodeNoUnitAvailable {
		t.Errorf("empty plan: got %v, want NO_UNIT_AVAILABLE", err)
	}
}

func TestPassive(t *testing.T) {
	clock := now
	cfg := DefaultPassiveConfig()
	cfg.Hold, cfg.Now = 2*time.Second, func() time.Time { return clock }
	p, err := NewPassive(cfg)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		advance     time.Duration
		ok          bool
		wantChanged bool
		wantFailing bool
	}{
		{0, true, false, false},
		{0, false, false, false},
		{0, false, false, false},
		{0, false, true, true}, // third failure in a row
		{time.Second, false, false, true},
		{0, true, true, false}, // a success clears it
		{0, false, false, false},
		{0, false, false, false},
		{0, false, true, true},
		{2 * time.Second, false, true, true}, // the hold ran out (not failing), the next call failed again
	}
	for i, st := range steps {
		clock = clock.Add(st.advance)
		if changed := p.Record(7, st.ok, 10*time.Millisecond); changed != st.wantChanged {
			t.Fatalf("step %d: changed %v, want %v", i, changed, st.wantChanged)
		}
		view, next := p.Snapshot()
		if view[7].Failing != st.wantFailing {
			t.Fatalf("step %d: failing %v, want %v", i, view[7].Failing, st.wantFailing)
		}
		if st.wantFailing != !next.IsZero() || st.wantFailing && !next.Equal(clock.Add(2*time.Second)) {
			t.Fatalf("step %d: next change %v", i, next)
		}
	}
	clock = clock.Add(2 * time.Second)
	if view, _ := p.Snapshot(); view[7].Failing || view[7].Latency != 10*time.Millisecond {
		t.Fatalf("after the hold: %+v, want not failing with latency 10ms", view[7])
	}

	// A new unit's first answer, which paid for the connection, is not its
	// latency; the next ones are.
	p.Record(8, true, 300*time.Millisecond)
	if view, _ := p.Snapshot(); view[8].Latency != 0 {
		t.Fatalf("after the first answer of 300ms: latency %v, want 0 (unknown)", view[8].Latency)
	}
	p.Record(8, true, 4*time.Millisecond)
	if view, _ := p.Snapshot(); view[8].Latency != 4*time.Millisecond {
		t.Fatalf("after a second answer of 4ms: latency %v, want 4ms", view[8].Latency)
	}
}

func ExamplePlan_Pick() {
	tbl := &routing.Table{Revision: 1, Units: []routing.Unit{
		{ID: 1, LogicAddrs: []string{"10.0.0.1:9101"}, Available: true, AcceptNew: true},
		{ID: 2, LogicAddrs: []string{"10.0.0.2:9101"}, Available: true, AcceptNew: true},
		{ID: 3, Partition: "key", LogicAddrs: []string{"10.0.0.3:9101"}, Available: true, AcceptNew: true},
	}, Merchants: map[string]string{"1900000009": "key"},
		Partitions: map[string]routing.Partition{"key": {OnNoUnit: routing.Spill, SpillTo: "normal"}}}
	tbl.Normalize()
	plan := Build(Inputs{Table: tbl, Now: time.Now()})
	var buf [MaxPick]tradeunit.UnitID
	units, _ := plan.Pick(buf[:0], "1900000009", "order-1", 3)
	fmt.Println("key merchant tries", units[0], "then spills to", units[1:])
	// Output: key merchant tries 3 then spills to [2 1]
}
