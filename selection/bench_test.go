package selection

import (
	"fmt"
	"syscall"
	"testing"

	"tradeunit"
	"tradeunit/routing"
)

// BenchmarkPick measures the per-create cost of choosing the units to try
// (3, the default attempts) with 8, 64 and 1,000 units in one partition:
// "equal" weights, and "mixed", where balancing doubled a tenth of the units
// and halved another tenth (three weight classes).
func BenchmarkPick(b *testing.B) {
	for _, n := range []int{8, 64, 1000} {
		for _, mix := range []string{"equal", "mixed"} {
			b.Run(fmt.Sprintf("units=%d/%s", n, mix), func(b *testing.B) {
				units := make([]routing.Unit, n)
				recent := map[tradeunit.UnitID]uint64{}
				for i := range units {
					units[i] = hot(tradeunit.UnitID(i+1), "normal")
					recent[units[i].ID] = 100
					if mix == "mixed" {
						switch i % 10 {
						case 0:
							recent[units[i].ID] = 10
						case 1:
							recent[units[i].ID] = 1000
						}
					}
				}
				plan := Build(Inputs{Table: table(b, nil, units...), Recent: recent})
				outs := make([]string, 1024)
				for i := range outs {
					outs[i] = fmt.Sprintf("order-%08d", i)
				}
				var buf [MaxPick]tradeunit.UnitID
				b.ReportAllocs()
				b.ResetTimer()
				cpu := cpuTime()
				for i := 0; i < b.N; i++ {
					if _, err := plan.Pick(buf[:0], "1900000001", outs[i&1023], 3); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

// BenchmarkBuild measures rebuilding a plan, done when an input changes
// (and every tenth of the balancing window), never per request.
func BenchmarkBuild(b *testing.B) {
	for _, n := range []int{8, 1000} {
		b.Run(fmt.Sprintf("units=%d", n), func(b *testing.B) {
			units := make([]routing.Unit, n)
			for i := range units {
				units[i] = hot(tradeunit.UnitID(i+1), "normal")
			}
			in := Inputs{Table: table(b, nil, units...)}
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				Build(in)
			}
		})
	}
}

// cpuTime returns the CPU time the process has used, in nanoseconds. On a
// shared machine it is steadier than the wall-clock ns/op: time spent
// waiting for the CPU (another process's turn, or the hypervisor's steal)
// is not in it.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
