package proxy

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"tradeunit"
	"tradeunit/routing"
)

// TestZonePreference: a proxy with a zone calls a unit's logic replicas in
// its zone first, spread over them, and the others only when none of its
// zone answers; without a zone (or with replicas of none) it spreads over
// all of them as before; replicas in an evacuated zone are called only
// when no other answers.
func TestZonePreference(t *testing.T) {
	addrs := []string{"10.0.1.1:7000", "10.0.1.2:7000", "10.0.2.1:7000", "10.0.3.1:7000"}
	zones := map[string]string{addrs[0]: "a", addrs[1]: "a", addrs[2]: "b", addrs[3]: "c"}
	tests := []struct {
		name      string
		zone      string
		zones     map[string]string
		evacuated []string
		down      []int // replicas whose connection is known down
		dead      []int // replicas that are called but give no answer
		// want: the replicas that must answer over many calls, each at
		// least once; no other may answer.
		want []int
	}{
		{name: "own zone only", zone: "a", zones: zones, want: []int{0, 1}},
		{name: "a zone of one", zone: "b", zones: zones, want: []int{2}},
		{name: "own zone down: the others", zone: "b", zones: zones, down: []int{2}, want: []int{0, 1, 3}},
		{name: "own zone silent: the others", zone: "a", zones: zones, dead: []int{0, 1}, want: []int{2, 3}},
		{name: "one of the zone silent: its peer", zone: "a", zones: zones, dead: []int{1}, want: []int{0}},
		{name: "no proxy zone: all", zones: zones, want: []int{0, 1, 2, 3}},
		{name: "unit without zones: all", zone: "a", want: []int{0, 1, 2, 3}},
		{name: "a zone with no replica: all", zone: "z", zones: zones, want: []int{0, 1, 2, 3}},
		{name: "own zone evacuated: the others", zone: "a", zones: zones, evacuated: []string{"a"}, want: []int{2, 3}},
		{name: "no proxy zone, one evacuated: the others", zones: zones, evacuated: []string{"b"}, want: []int{0, 1, 3}},
		{name: "evacuated zone the last resort", zone: "b", zones: zones, evacuated: []string{"a"}, dead: []int{2, 3}, want: []int{0, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dialer := &fakeDialer{units: map[string]*fakeUnit{}}
			fakes := make([]*fakeUnit, len(addrs))
			for i, a := range addrs {
				fakes[i] = newFakeUnit(1)
				fakes[i].down = slices.Contains(tt.down, i)
				dialer.units[a] = fakes[i]
			}
			routes, err := routing.NewMemoryTable(&routing.Table{Revision: 1, Units: []routing.Unit{
				{ID: 1, LogicAddrs: addrs, LogicZones: tt.zones, Available: true, AcceptNew: true}}, EvacuatedZones: tt.evacuated})
			if err != nil {
				t.Fatal(err)
			}
			cfg := DefaultConfig()
			cfg.Zone, cfg.UnitTimeout = tt.zone, time.Second
			p, err := New(cfg, Deps{Routes: routes, Dialer: dialer, Registry: prometheus.NewRegistry(), Logger: discardLogger(),
				Credentials: &Credentials{Merchants: []Merchant{{Mchid: "1900000001", APIKey: "0123456789abcdef"}}}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(p.Close)
			u, _ := routes.Current().Unit(1)
			answered := map[int]int{}
			for i := 0; i < 200; i++ {
				got, _, err := callUnit(context.Background(), p, u, "test", func(_ context.Context, svc tradeunit.OrderService) (int, error) {
					r := slices.Index(fakes, svc.(*fakeUnit))
					if slices.Contains(tt.dead, r) {
						return -1, tradeunit.NoAnswer("fake", "silent", fmt.Errorf("replica %d silent", r))
					}
					return r, nil
				})
				if err != nil {
					t.Fatalf("call %d: %v", i, err)
				}
				answered[got]++
			}
			for r := range answered {
				if !slices.Contains(tt.want, r) {
					t.Fatalf("replica %d (zone %q) answered %d calls; want only %v", r, tt.zones[addrs[r]], answered[r], tt.want)
				}
			}
			for _, r := range tt.want {
				if answered[r] == 0 {
					t.Fatalf("replica %d answered no call (answers %v); want calls spread over %v", r, answered, tt.want)
				}
			}
		})
	}
}
