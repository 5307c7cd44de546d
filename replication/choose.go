package replication

import (
	"errors"
	"fmt"
	"strings"
)

// Candidate is one replica a failover may promote: its name (for
// messages: a DSN without password, an address), and what Inspect returned
// for it.
type Candidate struct {
	Name   string
	Status Status
	Err    error // Inspect's error: the replica could not be read
}

// Policy says when a replica is safe to promote. The zero Policy is the
// strict one: domain 0, every replica must be reachable, no bound on the
// backlog, nothing known beyond what the replicas report.
type Policy struct {
	// Domain is the GTID domain the set writes in (gtid_domain_id).
	Domain uint32
	// AllowUnreachable lets a failover go ahead when some replicas cannot
	// be read. Off by default: semi-sync guarantees that an acknowledged
	// commit is on at least one replica, and the unreadable one may be the
	// only one that has it. An operator who knows it is lost for good (or
	// accepts the loss) turns it on.
	AllowUnreachable bool
	// MaxBacklog bounds the transactions a candidate has received but not
	// yet applied (0: no bound). Promotion waits for them to be applied;
	// a longer backlog would keep the unit without a primary too long.
	MaxBacklog uint64
	// MustHave is a position known to be committed and acknowledged (say,
	// the highest GTID a client saw); a candidate that has not received it
	// lacks acknowledged commits that no one can give it any more.
	MustHave GTIDList
}

// ErrNoSafeReplica is wrapped by MostAdvanced's error when no replica may
// be promoted.
var ErrNoSafeReplica = errors.New("no replica is safe to promote")

// NoSafeReplicaError is MostAdvanced's refusal, with the reason for each
// candidate.
type NoSafeReplicaError struct {
	Reasons []string // "NAME: why"
}

// Error lists why each candidate was refused.
func (e *NoSafeReplicaError) Error() string {
	if len(e.Reasons) == 0 {
		return ErrNoSafeReplica.Error() + ": no candidates"
	}
	return ErrNoSafeReplica.Error() + ": " + strings.Join(e.Reasons, "; ")
}

// Unwrap makes errors.Is(err, ErrNoSafeReplica) true.
func (e *NoSafeReplicaError) Unwrap() error { return ErrNoSafeReplica }

// MostAdvanced chooses the replica to promote when the primary is lost:
// among the safe candidates, the one that has received the most of the
// old primary's stream (highest received sequence number in the domain,
// then highest applied, then the earliest in cands). Semi-sync sends the
// acknowledgement once a replica has received a transaction, and every
// replica receives a prefix of the same stream, so the replica that
// received the most holds every acknowledged commit that any reachable
// replica holds.
//
// A candidate is unsafe when it could not be read, is not a replica, its
// applier stopped on an error (it cannot apply what it holds), its
// receiver stopped on a divergence error (1236: its history is not its
// source's), its backlog exceeds p.MaxBacklog, or it has not received
// p.MustHave. With an unreadable candidate and !p.AllowUnreachable,
// MostAdvanced refuses altogether. The error is a *NoSafeReplicaError.
func MostAdvanced(cands []Candidate, p Policy) (Candidate, error) {
	var reasons []string
	best, bestRecv, bestApplied := -1, uint64(0), uint64(0)
	unreachable := false
	for i, c := range cands {
		recv, applied, why := judge(c, p)
		if c.Err != nil {
			unreachable = true
		}
		if why != "" {
			reasons = append(reasons, c.Name+": "+why)
			continue
		}
		if best < 0 || recv > bestRecv || (recv == bestRecv && applied > bestApplied) {
			best, bestRecv, bestApplied = i, recv, applied
		}
	}
	if unreachable && !p.AllowUnreachable {
		reasons = append(reasons, "an unreachable replica may hold acknowledged commits the others lack (Policy.AllowUnreachable overrides)")
		return Candidate{}, &NoSafeReplicaError{Reasons: reasons}
	}
	if best < 0 {
		return Candidate{}, &NoSafeReplicaError{Reasons: reasons}
	}
	return cands[best], nil
}

// judge returns a candidate's received and applied sequence numbers in the
// domain, or why it is unsafe.
func judge(c Candidate, p Policy) (recv, applied uint64, why string) {
	if c.Err != nil {
		return 0, 0, fmt.Sprintf("unreachable: %v", c.Err)
	}
	r := c.Status.Replica
	if r == nil {
		return 0, 0, fmt.Sprintf("not a replica (%s)", c.Status.Role())
	}
	if r.LastSQLErrno != 0 {
		return 0, 0, fmt.Sprintf("applier stopped on error %d: %s", r.LastSQLErrno, r.LastSQLError)
	}
	if r.LastIOErrno == 1236 {
		return 0, 0, fmt.Sprintf("diverged from its source (error 1236): %s", r.LastIOError)
	}
	applied, _ = r.AppliedPos.Seq(p.Domain)
	recv, _ = r.ReceivedPos.Seq(p.Domain)
	if applied > recv {
		// Gtid_IO_Pos is empty after a restart until something arrives.
		recv = applied
	}
	if p.MaxBacklog > 0 && recv-applied > p.MaxBacklog {
		return 0, 0, fmt.Sprintf("%d transactions received but not applied (bound %d)", recv-applied, p.MaxBacklog)
	}
	if want, ok := p.MustHave.Seq(p.Domain); ok && recv < want {
		return 0, 0, fmt.Sprintf("has received up to %d, lacks acknowledged %d", recv, want)
	}
	if !r.SQLRunning && recv > applied {
		return 0, 0, "applier stopped with transactions left to apply"
	}
	return recv, applied, ""
}
