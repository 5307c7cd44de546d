package admin

import (
	"context"
	"net/http"
	"time"

	"tradeunit"
	"tradeunit/dsn"
	"tradeunit/health"
	"tradeunit/routing"
	"tradeunit/store/sqlstore"
)

// UnitView is one line of `tradeunit admin units`.
type UnitView struct {
	Unit        tradeunit.UnitID    `json:"unit"`
	Partition   string              `json:"partition"`
	Temperature routing.Temperature `json:"temperature"`
	Available   bool                `json:"available"`
	AcceptNew   bool                `json:"accept_new"`
	// NewOrders says whether the unit takes new orders now: available,
	// hot, accepting them and not blacklisted.
	NewOrders   bool    `json:"new_orders"`
	Blacklisted string  `json:"blacklisted,omitempty"` // the reason, while active
	Health      string  `json:"health"`                // the checker's verdict, or "unknown"
	LatencyMS   float64 `json:"latency_ms,omitempty"`  // probe latency (EWMA)
	// OrdersPerSec is the unit's rate of new orders over the last minute,
	// counted in its storage; -1 when the storage could not be read.
	OrdersPerSec float64  `json:"orders_per_sec"`
	LogicAddrs   []string `json:"logic_addrs"`
	// Storage is the unit's primary in the storage topology (no password:
	// DSNs never hold one); empty without the topology.
	Storage dsn.DSN `json:"storage,omitzero"`
	// Standby: the unit takes its partition's new orders only while the
	// partition has no other unit that can (routing.Unit.Standby).
	Standby bool `json:"standby,omitempty"`
	// LogicZones and StorageZones are the zones of its logic replicas (by
	// address) and of its storage servers (by server, from the topology).
	LogicZones   map[string]string `json:"logic_zones,omitempty"`
	StorageZones map[string]string `json:"storage_zones,omitempty"`
	// Warnings name what one zone's loss would take down (ZoneWarnings).
	Warnings []string `json:"warnings,omitempty"`
}

// recentWindow is the window of UnitView.OrdersPerSec.
const recentWindow = time.Minute

func (a *Admin) httpClient() *http.Client {
	if a.HTTP == nil {
		return &http.Client{}
	}
	return a.HTTP
}

// Units lists every unit with its settings, the health checker's verdict
// (if healthURL is set and answers) and its recent rate of new orders, read
// from its storage without changing it (a listing never creates or
// migrates a database).
func (a *Admin) Units(ctx context.Context, healthURL string) ([]UnitView, error) {
	t := a.Routes.Current()
	verdicts := map[tradeunit.UnitID]*health.UnitReport{}
	if healthURL != "" {
		if r, err := health.FetchWith(ctx, a.httpClient(), healthURL); err == nil {
			for i := range r.Units {
				verdicts[r.Units[i].Unit] = &r.Units[i]
			}
		}
	}
	now := a.now()
	out := make([]UnitView, 0, len(t.Units))
	for _, u := range t.Units {
		v := UnitView{Unit: u.ID, Partition: u.Partition, Temperature: u.Temperature, Available: u.Available,
			AcceptNew: u.AcceptNew, NewOrders: u.TakesNewOrders(), Health: "unknown", LogicAddrs: u.LogicAddrs, OrdersPerSec: -1,
			Standby: u.Standby, LogicZones: u.LogicZones}
		var storage *routing.Storage
		if a.Topology != nil {
			if st, ok := a.Topology.Current().Unit(u.ID); ok {
				v.Storage, v.StorageZones, storage = st.Primary, st.Zones, &st.Storage
				v.OrdersPerSec = a.recentRate(ctx, st.Primary, now)
			}
		}
		v.Warnings = ZoneWarnings(&u, storage)
		if t.OnlyInEvacuatedZones(&u) {
			v.NewOrders = false
			v.Warnings = append(v.Warnings, "every logic replica is in an evacuated zone: it takes no new orders (tradeunit admin zone restore)")
		}
		if e, active := t.Blacklisted(u.ID, now); active {
			v.Blacklisted, v.NewOrders = e.Reason, false
		}
		if r := verdicts[u.ID]; r != nil {
			v.Health, v.LatencyMS = r.Verdict, r.LatencyEWMAMS
		}
		out = append(out, v)
	}
	return out, nil
}

func (a *Admin) recentRate(ctx context.Context, d dsn.DSN, now time.Time) float64 {
	if d == (dsn.DSN{}) {
		return -1
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	s, err := sqlstore.OpenReadOnly(ctx, d, a.Passwords)
	if err != nil {
		return -1
	}
	defer s.Close()
	n, err := s.CreatedSince(ctx, now.Add(-recentWindow))
	if err != nil {
		return -1
	}
	return float64(n) / recentWindow.Seconds()
}
