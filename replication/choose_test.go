package replication_test

import (
	"errors"
	"strings"
	"testing"

	"tradeunit/replication"
)

// replica builds the Status of a replica that has received recv and
// applied applied (GTID lists).
func replica(t *testing.T, recv, applied string, mod ...func(*replication.ReplicaStatus)) replication.Status {
	t.Helper()
	r := &replication.ReplicaStatus{IORunning: "Connecting", SQLRunning: true,
		ReceivedPos: mustList(t, recv), AppliedPos: mustList(t, applied)}
	for _, m := range mod {
		m(r)
	}
	return replication.Status{ReadOnly: true, Replica: r, SlavePos: r.AppliedPos}
}

func TestMostAdvanced(t *testing.T) {
	down := errors.New("connect: connection refused")
	sqlError := func(r *replication.ReplicaStatus) {
		r.SQLRunning, r.LastSQLErrno, r.LastSQLError = false, 1950, "out-of-order sequence number"
	}
	sqlStopped := func(r *replication.ReplicaStatus) { r.SQLRunning = false }
	diverged := func(r *replication.ReplicaStatus) { r.LastIOErrno, r.LastIOError = 1236, "slave ahead of master" }
	primary := replication.Status{ReadOnly: false}

	cases := []struct {
		name   string
		cands  []replication.Candidate
		policy replication.Policy
		want   string // the chosen name, or "" for a refusal
		reason string // a part of the refusal
	}{
		{"highest received wins", []replication.Candidate{
			{Name: "a", Status: replica(t, "0-1-100", "0-1-100")},
			{Name: "b", Status: replica(t, "0-1-105", "0-1-99")},
		}, replication.Policy{}, "b", ""},
		{"received, not applied, decides", []replication.Candidate{
			{Name: "a", Status: replica(t, "0-1-101", "0-1-101")},
			{Name: "b", Status: replica(t, "0-1-102", "0-1-90")},
		}, replication.Policy{}, "b", ""},
		{"tie: higher applied", []replication.Candidate{
			{Name: "a", Status: replica(t, "0-1-100", "0-1-98")},
			{Name: "b", Status: replica(t, "0-1-100", "0-1-100")},
		}, replication.Policy{}, "b", ""},
		{"tie: first", []replication.Candidate{
			{Name: "a", Status: replica(t, "0-1-100", "0-1-100")},
			{Name: "b", Status: replica(t, "0-1-100", "0-1-100")},
		}, replication.Policy{}, "a", ""},
		{"empty Gtid_IO_Pos after restart counts as applied", []replication.Candidate{
			{Name: "a", Status: replica(t, "", "0-1-100")},
			{Name: "b", Status: replica(t, "0-1-99", "0-1-99")},
		}, replication.Policy{}, "a", ""},
		{"applier error is unsafe", []replication.Candidate{
			{Name: "a", Status: replica(t, "0-1-110", "0-1-100", sqlError)},
			{Name: "b", Status: replica(t, "0-1-99", "0-1-99")},
		}, replication.Policy{}, "b", ""},
		{"stopped applier with a backlog is unsafe", []replication.Candidate{
			{Name: "a", Status: replica(t, "0-1-110", "0-1-100", sqlStopped)},
		}, replication.Policy{}, "", "applier stopped"},
		{"stopped applier with nothing to apply is fine", []replication.Candidate{
			{Name: "a", Status: replica(t, "0-1-100", "0-1-100", sqlStopped)},
		}, replication.Policy{}, "a", ""},
		{"diverged is unsafe", []replication.Candidate{
			{Name: "a", Status: replica(t, "0-1-120", "0-1-120", diverged)},
			{Name: "b", Status: replica(t, "0-1-99", "0-1-99")},
		}, replication.Policy{}, "b", ""},
		{"only one, with an applier error", []replication.Candidate{
			{Name: "a", Status: replica(t, "0-1-110", "0-1-100", sqlError)},
		}, replication.Policy{}, "", "applier stopped on error 1950"},
		{"unreachable refuses by default", []replication.Candidate{
			{Name: "a", Err: down},
			{Name: "b", Status: replica(t, "0-1-99", "0-1-99")},
		}, replication.Policy{}, "", "may hold acknowledged commits"},
		{"unreachable allowed", []replication.Candidate{
			{Name: "a", Err: down},
			{Name: "b", Status: replica(t, "0-1-99", "0-1-99")},
		}, replication.Policy{AllowUnreachable: true}, "b", ""},
		{"all unreachable", []replication.Candidate{
			{Name: "a", Err: down}, {Name: "b", Err: down},
		}, replication.Policy{AllowUnreachable: true}, "", "unreachable"},
		{"no candidates", nil, replication.Policy{}, "", "no candidates"},
		{"a primary is no candidate", []replication.Candidate{
			{Name: "a", Status: primary},
		}, replication.Policy{}, "", "not a replica (primary)"},
		{"backlog beyond the bound", []replication.Candidate{
			{Name: "a", Status: replica(t, "0-1-1000", "0-1-10")},
			{Name: "b", Status: replica(t, "0-1-900", "0-1-890")},
		}, replication.Policy{MaxBacklog: 100}, "b", ""},
		{"lacks what is known acknowledged", []replication.Candidate{
			{Name: "a", Status: replica(t, "0-1-95", "0-1-95")},
		}, replication.Policy{MustHave: mustList(t, "0-1-99")}, "", "lacks acknowledged 99"},
		{"has what is known acknowledged", []replication.Candidate{
			{Name: "a", Status: replica(t, "0-1-99", "0-1-95")},
		}, replication.Policy{MustHave: mustList(t, "0-1-99")}, "a", ""},
		{"another domain", []replication.Candidate{
			{Name: "a", Status: replica(t, "0-1-100,1-1-5", "0-1-100,1-1-5")},
			{Name: "b", Status: replica(t, "0-1-90,1-1-9", "0-1-90,1-1-9")},
		}, replication.Policy{Domain: 1}, "b", ""},
	}
	for _, tc := range cases {
		got, err := replication.MostAdvanced(tc.cands, tc.policy)
		if tc.want != "" {
			if err != nil || got.Name != tc.want {
				t.Errorf("%s: got %q, %v, want %q", tc.name, got.Name, err, tc.want)
			}
			continue
		}
		var nse *replication.NoSafeReplicaError
		if !errors.As(err, &nse) || !errors.Is(err, replication.ErrNoSafeReplica) {
			t.Errorf("%s: got %q, %v, want a *NoSafeReplicaError", tc.name, got.Name, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("%s: got %q, want it to mention %q", tc.name, err, tc.reason)
		}
	}
}

func TestRoleAndAcknowledged(t *testing.T) {
	on := replication.SemiSync{MasterEnabled: true, MasterOn: true, Clients: 1}
	cases := []struct {
		st   replication.Status
		role replication.Role
		ack  bool
	}{
		{replication.Status{SemiSync: on}, replication.RolePrimary, true},
		{replication.Status{SemiSync: replication.SemiSync{MasterEnabled: true, MasterOn: true}}, replication.RolePrimary, false},
		{replication.Status{SemiSync: replication.SemiSync{MasterEnabled: true, Clients: 1}}, replication.RolePrimary, false},
		{replication.Status{ReadOnly: true, SemiSync: on}, replication.RoleFenced, true},
		{replication.Status{ReadOnly: true, Replica: &replication.ReplicaStatus{}}, replication.RoleReplica, false},
	}
	for i, tc := range cases {
		if tc.st.Role() != tc.role || tc.st.Acknowledged() != tc.ack {
			t.Errorf("case %d: got %s, %v, want %s, %v", i, tc.st.Role(), tc.st.Acknowledged(), tc.role, tc.ack)
		}
	}
}
