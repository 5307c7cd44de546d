package proxy

import (
	"testing"

	"tradeunit/health"
)

func TestCheckerView(t *testing.T) {
	r := &health.Report{
		Partitions: []health.PartitionReport{{Name: "normal"}, {Name: "key", Panic: true}},
		Units: []health.UnitReport{
			{Unit: 1, Partition: "normal", Verdict: health.Healthy, LatencyEWMAMS: 2.5},
			{Unit: 2, Partition: "normal", Verdict: health.Ejected},
			{Unit: 3, Partition: "key", Verdict: health.Unknown},
		},
	}
	v := checkerView(r)
	if v.Units[1].Ejected || v.Units[1].Latency.Microseconds() != 2500 || !v.Units[2].Ejected || v.Units[3].Ejected {
		t.Fatalf("units: %+v", v.Units)
	}
	if !v.Panic["key"] || v.Panic["normal"] {
		t.Fatalf("panic: %v", v.Panic)
	}
}
