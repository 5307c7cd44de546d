package selection

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"tradeunit"
	"tradeunit/routing"
)

// hot returns a unit that takes new orders in partition p.
func hot(id tradeunit.UnitID, p string) routing.Unit {
	return routing.Unit{ID: id, Partition: p, LogicAddrs: []string{"127.0.0.1:1"},
		Available: true, AcceptNew: true}
}

// table returns a normalized, valid table of units; edit changes it first.
func table(t testing.TB, edit func(*routing.Table), units ...routing.Unit) *routing.Table {
	t.Helper()
	tbl := &routing.Table{Revision: 1, Units: units}
	if edit != nil {
		edit(tbl)
	}
	tbl.Normalize()
	if err := tbl.Validate(); err != nil {
		t.Fatal(err)
	}
	return tbl
}

var now = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

func pick(t testing.TB, p *Plan, mchid, out string, n int) []tradeunit.UnitID {
	t.Helper()
	got, err := p.Pick(nil, mchid, out, n)
	if err != nil {
		t.Fatalf("Pick(%s/%s): %v", mchid, out, err)
	}
	return got
}

// TestPickMatchesRank: with every unit healthy and no balancing, a plan
// ranks exactly as Rank does, whatever the weights, so the rendezvous
// preference (and a repeated create's idempotency) is unchanged. The large
// plans take the scans that small ones do not (scan.go), with both.
func TestPickMatchesRank(t *testing.T) {
	eachScan(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		for _, n := range []int{1, 2, 3, 7, 40, 64, 100, 1000} {
			for _, weights := range []string{"equal", "two classes", "balanced", "all different"} {
				t.Run(fmt.Sprintf("%d units %s", n, weights), func(t *testing.T) {
					var units []routing.Unit
					var cands []Candidate
					for i := 1; i <= n; i++ {
						u := hot(tradeunit.UnitID(i*3), "normal")
						switch weights {
						case "two classes":
							u.Weight = float64(1 + i%2)
						case "balanced": // as balancing and speed make them: most 1, some 2, ½ or ¼
							u.Weight = []float64{1, 1, 1, 1, 1, 1, 1, 2, 0.5, 0.25}[i%10]
						case "all different":
							u.Weight = 0.5 + rng.Float64()
						}
						units = append(units, u)
					}
					tbl := table(t, nil, units...)
					for _, u := range tbl.Units {
						cands = append(cands, Candidate{Unit: u.ID, Weight: u.Weight})
					}
					plan := Build(Inputs{Table: tbl, Now: now})
					keys := 2000
					if n >= 100 {
						keys = 300 // Rank sorts them all
					}
					for i := range keys {
						out := fmt.Sprintf("order-%d", i)
						want := Rank(nil, "1900000001/"+out, cands)
						for _, attempts := range []int{1, 3, MaxPick} {
							got := pick(t, plan, "1900000001", out, attempts)
							if !slices.Equal(got, want[:min(len(want), attempts)]) {
								t.Fatalf("key %s, %d attempts: Pick %v, Rank %v", out, attempts, got, want[:min(len(want), MaxPick)])
							}
						}
					}
				})
			}
		}
	})
}

func TestPickPartitionsAndSpill(t *testing.T) {
	units := []routing.Unit{hot(1, "normal"), hot(2, "normal"), hot(3, "key"), hot(4, "key"), hot(5, "prerelease")}
	policy := func(spill bool) func(*routing.Table) {
		return func(tbl *routing.Table) {
			tbl.Merchants = map[string]string{"key-m": "key", "pre-m": "prerelease"}
			if spill {
				tbl.Partitions = map[string]routing.Partition{"key": {OnNoUnit: routing.Spill, SpillTo: "normal"}}
			}
		}
	}
	tests := []struct {
		name       string
		spill      bool
		down       []tradeunit.UnitID // made unavailable
		mchid      string
		want       [][]tradeunit.UnitID // the allowed units of each position
		wantRefuse string
	}{
		{"normal merchant stays in normal", false, nil, "any-m", [][]tradeunit.UnitID{{1, 2}, {1, 2}}, ""},
		{"key merchant stays in key", false, nil, "key-m", [][]tradeunit.UnitID{{3, 4}, {3, 4}}, ""},
		{"prerelease serves its merchant", false, nil, "pre-m", [][]tradeunit.UnitID{{5}}, ""},
		{"refuse when key has no unit", false, []tradeunit.UnitID{3, 4}, "key-m", nil,
			"partition key has no unit that takes new orders"},
		{"spill keeps the last attempt", true, nil, "key-m", [][]tradeunit.UnitID{{3, 4}, {3, 4}, {1, 2}}, ""},
		{"spill when key has no unit", true, []tradeunit.UnitID{3, 4}, "key-m", [][]tradeunit.UnitID{{1, 2}, {1, 2}}, ""},
		{"spill target empty too", true, []tradeunit.UnitID{1, 2, 3, 4}, "key-m", nil,
			"partition key and its spill partition normal have no unit"},
		{"normal never spills into prerelease", false, []tradeunit.UnitID{1, 2}, "any-m", nil,
			"partition normal has no unit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			us := slices.Clone(units)
			for i := range us {
				if slices.Contains(tt.down, us[i].ID) {
					us[i].Available = false
				}
			}
			plan := Build(Inputs{Table: table(t, policy(tt.spill), us...), Now: now})
			for i := 0; i < 200; i++ {
				got, err := plan.Pick(nil, tt.mchid, fmt.Sprint("o-", i), 3)
				if tt.wantRefuse != "" {
					if tradeunit.ErrorCode(err) != tradeunit.CodeNoUnitAvailable || !strings.Contains(tradeunit.ErrorMessage(err), tt.wantRefuse) {
						t.Fatalf("got %v, %v; want NO_UNIT_AVAILABLE %q", got, err, tt.wantRefuse)
					}
					return
				}
				if err != nil || len(got) != len(tt.want) {
					t.Fatalf("got %v, %v; want %d units", got, err, len(tt.want))
				}
				for j, u := range got {
					if !slices.Contains(tt.want[j], u) {
						t.Fatalf("got %v: position %d is unit %d, want one of %v", got, j, u, tt.want[j])
					}
				}
			}
		})
	}
}

func TestPickCanaryShare(t *testing.T) {
	for _, share := range []float64{0, 0.01, 0.1, 0.5, 1} {
		t.Run(fmt.Sprint(share), func(t *testing.T) {
			units := []routing.Unit{hot(1, "normal"), hot(2, "normal"), hot(3, "normal"), hot(4, "normal")}
			units[3].Labels = map[string]string{"release": "v2"}
			tbl := table(t, func(tbl *routing.Table) {
				tbl.Partitions = map[string]routing.Partition{"normal": {Canary: &routing.Canary{Label: "release", Value: "v2", Share: share}}}
			}, units...)
			plan := Build(Inputs{Table: tbl, Now: now})
			const n = 20000
			canary := 0
			for i := 0; i < n; i++ {
				got := pick(t, plan, "m", fmt.Sprint("o-", i), 3)
				if got[0] == 4 {
					canary++
				} else if slices.Index(got, 4) >= 0 {
					t.Fatalf("canary unit ranked %v: after a stable unit but before the other stable ones", got)
				}
			}
			if got := float64(canary) / n; math.Abs(got-share) > 0.01 {
				t.Fatalf("canary unit first for %.3f of keys, want %.3f", got, share)
			}
		})
	}
}

func TestPickTiers(t *testing.T) {
	tbl := table(t, nil, hot(1, "normal"), hot(2, "normal"), hot(3, "normal"), hot(4, "key"))
	ejected := func(units ...tradeunit.UnitID) *CheckerView {
		v := &CheckerView{Units: map[tradeunit.UnitID]Checked{}, Panic: map[string]bool{}}
		for _, u := range units {
			v.Units[u] = Checked{Ejected: true}
		}
		return v
	}
	panicking := ejected(2)
	panicking.Panic["normal"] = true
	tests := []struct {
		name        string
		in          Inputs
		wantSuspect []tradeunit.UnitID
	}{
		{"all healthy", Inputs{}, nil},
		{"checker ejects", Inputs{Checker: ejected(2)}, []tradeunit.UnitID{2}},
		{"checker in panic is ignored", Inputs{Checker: panicking}, nil},
		{"panic elsewhere does not matter", Inputs{Checker: &CheckerView{
			Units: map[tradeunit.UnitID]Checked{2: {Ejected: true}}, Panic: map[string]bool{"key": true}}}, []tradeunit.UnitID{2}},
		{"own failures", Inputs{Passive: map[tradeunit.UnitID]Observed{3: {Failing: true, Failures: 3}}}, []tradeunit.UnitID{3}},
		{"both views", Inputs{Checker: ejected(1), Passive: map[tradeunit.UnitID]Observed{3: {Failing: true}}}, []tradeunit.UnitID{1, 3}},
		{"no view empties a partition", Inputs{Checker: ejected(1, 2, 3)}, []tradeunit.UnitID{1, 2, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.in.Table, tt.in.Now = tbl, now
			plan := Build(tt.in)
			for _, up := range plan.Units() {
				if up.Suspect != slices.Contains(tt.wantSuspect, up.Unit) {
					t.Fatalf("unit %d: suspect %v (%s), want %v", up.Unit, up.Suspect, up.Reason, !up.Suspect)
				}
			}
			for i := 0; i < 300; i++ {
				got := pick(t, plan, "m", fmt.Sprint("o-", i), 3)
				if len(got) != 3 {
					t.Fatalf("got %v, want all 3 normal units (suspects last, never dropped)", got)
				}
				healthy := 3 - len(tt.wantSuspect)
				for j, u := range got {
					if (j < healthy) == slices.Contains(tt.wantSuspect, u) {
						t.Fatalf("got %v: suspects %v must come after every healthy unit", got, tt.wantSuspect)
					}
				}
			}
		})
	}
}

func TestPickBlacklist(t *testing.T) {
	tbl := table(t, func(tbl *routing.Table) {
		tbl.Blacklist = []routing.BlacklistEntry{
			{Unit: 1, Reason: "drain"},
			{Unit: 2, Reason: "ten minutes", Until: now.Add(10 * time.Minute)},
		}
	}, hot(1, "normal"), hot(2, "normal"), hot(3, "normal"))
	plan := Build(Inputs{Table: tbl, Now: now})
	if got := plan.NextChange(); !got.Equal(now.Add(10 * time.Minute)) {
		t.Fatalf("NextChange: got %v, want the expiry of unit 2's entry", got)
	}
	for i := 0; i < 100; i++ {
		if got := pick(t, plan, "m", fmt.Sprint("o-", i), 3); !slices.Equal(got, []tradeunit.UnitID{3}) {
			t.Fatalf("got %v, want only unit 3 while 1 and 2 are blacklisted", got)
		}
	}
	if up := plan.Units()[0]; up.Eligible || up.Reason != "blacklisted: drain" {
		t.Fatalf("unit 1: %+v", up)
	}
	later := Build(Inputs{Table: tbl, Now: now.Add(10 * time.Minute)})
	seen := map[tradeunit.UnitID]bool{}
	for i := 0; i < 100; i++ {
		seen[pick(t, later, "m", fmt.Sprint("o-", i), 1)[0]] = true
	}
	if !seen[2] || seen[1] || !later.NextChange().IsZero() {
		t.Fatalf("after unit 2's entry expired: first choices %v, next change %v; want 2 and 3, none", seen, later.NextChange())
	}
}

func TestPickDoesNotAllocate(t *testing.T) {
	tbl := table(t, func(tbl *routing.Table) {
		tbl.Merchants = map[string]string{"key-m": "key"}
		tbl.Partitions = map[string]routing.Partition{
			"key":    {OnNoUnit: routing.Spill, SpillTo: "normal"},
			"normal": {Canary: &routing.Canary{Label: "r", Value: "2", Share: 0.5}},
		}
		tbl.Units[1].Weight = 2
		tbl.Units[2].Labels = map[string]string{"r": "2"}
	}, hot(1, "normal"), hot(2, "normal"), hot(3, "normal"), hot(4, "key"))
	plan := Build(Inputs{Table: tbl, Now: now, Passive: map[tradeunit.UnitID]Observed{1: {Failing: true}}})
	var buf [MaxPick]tradeunit.UnitID
	for _, mchid := range []string{"m", "key-m"} {
		allocs := testing.AllocsPerRun(1000, func() {
			if _, err := plan.Pick(buf[:0], mchid, "order-000001", 3); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("Pick for %s: %v allocations, want 0", mchid, allocs)
		}
	}
	large := weightedPlan(t, balancedWeights(1000))
	eachScan(t, func(t *testing.T) {
		for _, n := range []int{1, 3, MaxPick} {
			allocs := testing.AllocsPerRun(1000, func() {
				if _, err := large.Pick(buf[:0], "m", "order-000001", n); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Errorf("Pick of %d from 1,000 units: %v allocations, want 0", n, allocs)
			}
		}
	})
}
