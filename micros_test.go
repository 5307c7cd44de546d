package tradeunit

import (
	"testing"
	"time"
)

func TestUnixMicrosRoundTripsInUTC(t *testing.T) {
	shanghai := time.FixedZone("CST", 8*3600)
	in := time.Date(2025, 3, 4, 13, 6, 7, 123456789, shanghai)
	got := FromUnixMicros(UnixMicros(in))
	want := time.Date(2025, 3, 4, 5, 6, 7, 123456000, time.UTC)
	if got != want {
		t.Errorf("got %v, want %v", got, want)
	}
	if UnixMicros(time.Time{}) != 0 || !FromUnixMicros(0).IsZero() {
		t.Errorf("zero time does not map to 0 and back")
	}
}
