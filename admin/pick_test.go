package admin

import (
	"errors"
	"testing"

	"tradeunit/replication"
)

// TestPick: a replica a stopped failover promoted (writable, no source) is
// taken again rather than a second one promoted, unless another replica
// received more than it holds, or it lacks what must be had; without one,
// the most advanced replica is chosen.
func TestPick(t *testing.T) {
	gtids := func(s string) replication.GTIDList {
		l, err := replication.ParseGTIDList(s)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	replica := func(name, recv string) replication.Candidate {
		return replication.Candidate{Name: name, Status: replication.Status{ReadOnly: true,
			Replica: &replication.ReplicaStatus{SQLRunning: true, ReceivedPos: gtids(recv), AppliedPos: gtids(recv)}}}
	}
	primary := func(name, pos string) replication.Candidate {
		return replication.Candidate{Name: name, Status: replication.Status{BinlogPos: gtids(pos)}}
	}
	fenced := replication.Candidate{Name: "f", Status: replication.Status{ReadOnly: true, BinlogPos: gtids("0-1-99")}}
	tests := []struct {
		name     string
		cands    []replication.Candidate
		mustHave string
		want     string
		promoted bool
		refused  bool
	}{
		{"no promoted one: the most advanced", []replication.Candidate{replica("a", "0-1-10"), replica("b", "0-1-12")}, "", "b", false, false},
		{"promoted one taken again", []replication.Candidate{primary("a", "0-1-12"), replica("b", "0-1-12")}, "", "a", true, false},
		{"promoted one behind another replica: refused", []replication.Candidate{primary("a", "0-1-10"), replica("b", "0-1-12")}, "", "", false, true},
		{"promoted one lacking what must be had: refused", []replication.Candidate{primary("a", "0-1-12"), replica("b", "0-1-12")}, "0-1-13", "", false, true},
		{"a read-only server without a source is no primary", []replication.Candidate{fenced, replica("b", "0-1-12")}, "", "b", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := replication.Policy{}
			if tt.mustHave != "" {
				p.MustHave = gtids(tt.mustHave)
			}
			got, promoted, err := pick(tt.cands, p)
			if tt.refused {
				if !errors.Is(err, replication.ErrNoSafeReplica) {
					t.Fatalf("got %s, %v; want a refusal", got.Name, err)
				}
				return
			}
			if err != nil || got.Name != tt.want || promoted != tt.promoted {
				t.Fatalf("got %s promoted=%v err=%v; want %s promoted=%v", got.Name, promoted, err, tt.want, tt.promoted)
			}
		})
	}
}
