package ewma

import (
	"testing"
	"time"
)

func TestLatency(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name    string
		samples []time.Duration
		want    time.Duration
	}{
		{"empty", nil, 0},
		{"the first sample, which paid for the connection, is left out", []time.Duration{300 * ms}, 0},
		{"the second seeds it", []time.Duration{300 * ms, 4 * ms}, 4 * ms},
		{"then each moves it by alpha", []time.Duration{80 * ms, 10 * ms, 20 * ms}, 15 * ms},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var l Latency
			for _, s := range tc.samples {
				l.Observe(s, 0.5)
			}
			if got := l.Value(); got != tc.want {
				t.Errorf("after %v with alpha 0.5: %v, want %v", tc.samples, got, tc.want)
			}
		})
	}
}
