package bench

import (
	"math"
	"testing"
)

func TestRatiosOf(t *testing.T) {
	layer := func(perSec, p50, p99, proxy, unit float64, payPerSec, payP50, payCPU float64) Layer {
		return Layer{OrdersPerSec: perSec, Latency: Latency{P50: p50, P99: p99},
			CPUPerOrder: map[string]float64{"client": 999, "proxy": proxy, "unit": unit},
			Ops: []OpLayer{{Op: OpPay, PerSec: payPerSec, Latency: Latency{P50: payP50, P99: 2 * payP50},
				CPUPerOp: map[string]float64{"unit": payCPU}}}}
	}
	r := BaselineRound{
		Storage:   layer(1000, 2, 10, 0, 0, 2000, 1, 0),
		Direct:    layer(3000, 1, 5, 0, 100, 4000, 0.5, 50),
		Full:      layer(1500, 1.5, 20, 200, 300, 3000, 1, 80),
		Unbatched: layer(500, 6, 40, 400, 600, 1000, 3, 200),
	}
	tests := []struct {
		op   Op
		want Ratios
	}{
		{"", Ratios{FullOverLimit: 1.5, DirectOverLimit: 3, ProxyP50Overhead: 0.5, FullP99OverLimit: 2,
			ServerCPU: 500, CPUOverUnbatched: 0.5, FullOverUnbatched: 3}},
		{OpPay, Ratios{FullOverLimit: 1.5, DirectOverLimit: 2, ProxyP50Overhead: 1, FullP99OverLimit: 1,
			ServerCPU: 80, CPUOverUnbatched: 0.4, FullOverUnbatched: 3}},
		// Not measured: every ratio is 0, none divides by zero.
		{OpRefund, Ratios{ProxyP50Overhead: -1}},
	}
	for _, tt := range tests {
		got := ratiosOf(r, tt.op)
		for _, f := range []struct {
			name      string
			got, want float64
		}{
			{"full/limit", got.FullOverLimit, tt.want.FullOverLimit},
			{"direct/limit", got.DirectOverLimit, tt.want.DirectOverLimit},
			{"proxy p50", got.ProxyP50Overhead, tt.want.ProxyP50Overhead},
			{"p99/limit", got.FullP99OverLimit, tt.want.FullP99OverLimit},
			{"server CPU", got.ServerCPU, tt.want.ServerCPU},
			{"CPU/unbatched", got.CPUOverUnbatched, tt.want.CPUOverUnbatched},
			{"full/unbatched", got.FullOverUnbatched, tt.want.FullOverUnbatched},
		} {
			if math.Abs(f.got-f.want) > 1e-9 || math.IsNaN(f.got) {
				t.Errorf("op %q %s = %v, want %v", tt.op, f.name, f.got, f.want)
			}
		}
	}
}

func TestSpreadsOf(t *testing.T) {
	s := spreadsOf([]Ratios{{FullOverLimit: 0.9, ServerCPU: 300}, {FullOverLimit: 1.2, ServerCPU: 100}, {FullOverLimit: 1.0, ServerCPU: 200}})
	if s.FullOverLimit != (Spread{Median: 1.0, Min: 0.9, Max: 1.2}) {
		t.Errorf("full/limit spread = %+v", s.FullOverLimit)
	}
	if s.ServerCPU != (Spread{Median: 200, Min: 100, Max: 300}) {
		t.Errorf("server CPU spread = %+v", s.ServerCPU)
	}
}
