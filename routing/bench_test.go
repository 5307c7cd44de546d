package routing

import (
	"fmt"
	"testing"
	"time"

	"tradeunit"
	"tradeunit/orderno"
)

// BenchmarkRouteByOrderNo measures what every call after create does to find
// its unit: parse the unit out of the order number, look the unit up.
func BenchmarkRouteByOrderNo(b *testing.B) {
	for _, n := range []int{8, 64, 1000} {
		b.Run(fmt.Sprintf("units=%d", n), func(b *testing.B) {
			t := &Table{Revision: 1}
			for i := 1; i <= n; i++ {
				t.Units = append(t.Units, Unit{ID: tradeunit.UnitID(i), LogicAddrs: []string{"127.0.0.1:1"},
					Available: true})
			}
			t.Normalize()
			nos := make([]string, 1024)
			for i := range nos {
				no, _ := orderno.New(tradeunit.UnitID(i%n+1), time.Now(), uint64(i))
				nos[i] = no.String()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				id, err := orderno.UnitOf(nos[i&1023])
				if err != nil {
					b.Fatal(err)
				}
				if _, ok := t.Unit(id); !ok {
					b.Fatal("unit not found")
				}
			}
		})
	}
}
