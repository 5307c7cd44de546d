package admin

import (
	"context"
	"time"

	"tradeunit"
	"tradeunit/dsn"
	"tradeunit/replication"
	"tradeunit/routing"
)

// StorageView is one unit's storage as `tradeunit admin units --storage`
// shows it: what the topology names, and what each server says of itself.
// It holds no password (DSNs never do) and reading it changes nothing.
type StorageView struct {
	Unit         tradeunit.UnitID `json:"unit"`
	Primary      *ServerView      `json:"primary,omitempty"` // nil while a failover is under way
	Replicas     []ServerView     `json:"replicas,omitempty"`
	Fenced       []ServerView     `json:"fenced,omitempty"`
	LastFailover time.Time        `json:"last_failover,omitzero"`
	// The move to cold storage (package lifecycle): the copy being made,
	// and, once the unit is cold, the primary it left (kept, frozen, until
	// the move is made final).
	ColdCopy *ServerView `json:"cold_copy,omitempty"`
	Previous *ServerView `json:"previous,omitempty"`
	// Warnings name what one zone's loss would take down (ZoneWarnings).
	Warnings []string `json:"warnings,omitempty"`
}

// ServerView is one storage server of a unit.
type ServerView struct {
	DSN  dsn.DSN `json:"dsn"`
	Zone string  `json:"zone,omitempty"` // from the topology's zones
	// Error says why the server could not be read; the fields below are
	// then unknown. Empty for a SQLite file, which has nothing more to say.
	Error    string `json:"error,omitempty"`
	ReadOnly bool   `json:"read_only"`
	// SemiSyncClients are the replicas acknowledging the primary's commits
	// (primary only).
	SemiSyncClients int `json:"semi_sync_clients,omitempty"`
	// Receiving and LagMS are a replica's: its receiver connected to its
	// source, and the age of the newest heartbeat it has applied (-1:
	// unknown, no heartbeat seen).
	Receiving bool  `json:"receiving,omitempty"`
	LagMS     int64 `json:"lag_ms,omitempty"`
}

// Storage reads every unit's storage in the topology: read-only, each
// server inspected as the administrative user (FailoverOptions.AdminUser
// of DefaultFailoverOptions, with Passwords).
func (a *Admin) Storage(ctx context.Context) ([]StorageView, error) {
	if a.Topology == nil {
		return nil, paramErrorf("no storage topology beside the routing table")
	}
	o := DefaultFailoverOptions()
	o.passwords = a.Passwords
	var out []StorageView
	t := a.Routes.Current()
	for _, u := range a.Topology.Current().Units {
		v := StorageView{Unit: u.Unit, LastFailover: u.LastFailover}
		if u.HasPrimary() {
			p := o.server(ctx, u.Primary, false)
			v.Primary = &p
		}
		for _, d := range u.Replicas {
			v.Replicas = append(v.Replicas, o.server(ctx, d, true))
		}
		for _, d := range u.Fenced {
			v.Fenced = append(v.Fenced, o.server(ctx, d, false))
		}
		if u.ColdCopy != (dsn.DSN{}) {
			c := o.server(ctx, u.ColdCopy, false)
			v.ColdCopy = &c
		}
		if u.Previous != nil && u.Previous.HasPrimary() {
			p := o.server(ctx, u.Previous.Primary, false)
			v.Previous = &p
		}
		for _, s := range append(append([]*ServerView{v.Primary}, ptrs(v.Replicas)...), ptrs(v.Fenced)...) {
			if s != nil {
				s.Zone = u.Zones[s.DSN.Server()]
			}
		}
		if ru, ok := t.Unit(u.Unit); ok {
			v.Warnings = ZoneWarnings(ru, &u.Storage)
		} else {
			v.Warnings = ZoneWarnings(&routing.Unit{ID: u.Unit}, &u.Storage)
		}
		out = append(out, v)
	}
	return out, nil
}

func ptrs(s []ServerView) []*ServerView {
	out := make([]*ServerView, len(s))
	for i := range s {
		out[i] = &s[i]
	}
	return out
}

// server inspects the server of d (a replica's lag too).
func (o *FailoverOptions) server(ctx context.Context, d dsn.DSN, replica bool) ServerView {
	v := ServerView{DSN: d}
	if d.Scheme != dsn.MySQL {
		return v
	}
	admin, err := o.serverDSN(d)
	if err != nil {
		v.Error = err.Error()
		return v
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	st, err := replication.Inspect(ctx, admin)
	if err != nil {
		v.Error = err.Error()
		return v
	}
	v.ReadOnly, v.SemiSyncClients = st.ReadOnly, st.SemiSync.Clients
	if replica {
		v.Receiving = st.Replica != nil && st.Replica.Receiving()
		v.LagMS = -1
		if age, ok, err := replication.HeartbeatAge(ctx, admin); err == nil && ok {
			v.LagMS = age.Milliseconds()
		}
	}
	return v
}
