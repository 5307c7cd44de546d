package failover

import (
	"fmt"
	"strings"
	"time"
)

// Outcome is what a round decided for one unit.
type Outcome string

// The outcomes, in the order decide tries them.
const (
	Healthy Outcome = "healthy" // the controller's own check of the primary passed
	// Resume: the entry has no primary (a failover stopped half-way); it
	// is run again to finish.
	Resume Outcome = "resume"
	// Underway: the entry has had no primary for less than
	// ApplyTimeout+AckTimeout and no failover of this controller stopped:
	// someone else's (an operator's) failover may be running.
	Underway Outcome = "underway"
	Suspect  Outcome = "suspect" // own check failed, fewer than FailAfter rounds in a row
	// ReplicaReceives: a replica's receiver is still connected to the
	// primary; it is alive for replication, only cut off from us.
	ReplicaReceives Outcome = "replica-receives"
	// NoReplicaRead: no replica could be read, so none can vouch that the
	// primary is gone (nor be promoted).
	NoReplicaRead  Outcome = "no-replica-read"
	CheckerHealthy Outcome = "checker-healthy" // the second observer disagrees
	CheckerUnknown Outcome = "checker-unknown" // the second observer is missing
	Off            Outcome = "off"             // --off or the unit's failover=off label
	Damped         Outcome = "damped"          // the unit failed over less than MinInterval ago
	Capped         Outcome = "capped"          // MaxPerHour failovers in the last hour
	Failover       Outcome = "failover"        // every observer agrees: the primary is dead
)

// outcomes lists every Outcome, for the metrics.
var outcomes = []Outcome{Healthy, Resume, Underway, Suspect, ReplicaReceives, NoReplicaRead, CheckerHealthy, CheckerUnknown, Off, Damped, Capped, Failover}

// Evidence is what one round saw of one unit.
type Evidence struct {
	// NoPrimary: the topology names no primary (a failover under way or
	// stopped).
	NoPrimary bool
	// PrimaryFenced: the primary answers but is read-only. Only a failover
	// fences a mapped primary, and it unmaps it right after, so this is a
	// failover under way or stopped between those two steps (its
	// controller or operator killed): the unit takes no writes until it
	// is finished.
	PrimaryFenced bool
	// NoPrimaryFor is how long it has been seen without one (or with it
	// fenced); OursStopped is true when it was this controller's failover
	// that stopped.
	NoPrimaryFor time.Duration
	OursStopped  bool
	// PrimaryErr is the controller's own check of the primary: nil when it
	// answered.
	PrimaryErr error
	// Failures is how many rounds in a row, this one included, the own
	// check has failed.
	Failures int
	Replicas []ReplicaSeen
	Checker  Verdict
	// CheckerWhy is the checker's detail.
	CheckerWhy string
}

// ReplicaSeen is one replica's receiver, as read.
type ReplicaSeen struct {
	Server    string
	Err       error  // it could not be read
	IO        string // Slave_IO_Running ("" without a source)
	Source    string // host:port it receives from
	Receiving bool   // its IO thread is connected
}

// String is the evidence for the log.
func (e Evidence) String() string {
	var b strings.Builder
	switch {
	case e.NoPrimary:
		b.WriteString("primary: none in the topology")
	case e.PrimaryErr != nil:
		fmt.Fprintf(&b, "primary: %v (%d rounds in a row)", e.PrimaryErr, e.Failures)
	case e.PrimaryFenced:
		b.WriteString("primary: answers, read-only (fenced)")
	default:
		b.WriteString("primary: answers")
	}
	for _, r := range e.Replicas {
		if r.Err != nil {
			fmt.Fprintf(&b, "; replica %s: unreadable (%v)", r.Server, r.Err)
		} else {
			fmt.Fprintf(&b, "; replica %s: io=%s from %s", r.Server, r.IO, r.Source)
		}
	}
	fmt.Fprintf(&b, "; checker: %s", e.Checker)
	if e.CheckerWhy != "" {
		fmt.Fprintf(&b, " (%s)", e.CheckerWhy)
	}
	return b.String()
}

// Brakes are the switches and damping that apply to one unit's decision.
type Brakes struct {
	Off          bool      // global --off or the unit's label
	LastFailover time.Time // the unit's last failover (topology or this controller)
	Recent       int       // failovers of all units in the last hour
}

// Decision is an outcome and why.
type Decision struct {
	Outcome Outcome
	Why     string
}

// Decide judges one unit: the primary is declared dead, and a failover
// asked for, only when the controller's own check failed cfg.FailAfter
// rounds in a row, no replica still receives from it, and the checker (if
// any) sees the unit failing too; then the switches and damping may still
// hold it back. It is a pure function of its arguments.
func Decide(cfg Config, e Evidence, b Brakes, now time.Time) Decision {
	if e.NoPrimary || e.PrimaryErr == nil && e.PrimaryFenced {
		state := "has no primary"
		if !e.NoPrimary {
			state = "has a fenced (read-only) primary"
		}
		if b.Off {
			return Decision{Off, "the entry " + state + " (a stopped failover), but failover is off"}
		}
		if wait := cfg.ApplyTimeout + cfg.AckTimeout; !e.OursStopped && e.NoPrimaryFor < wait {
			return Decision{Underway, fmt.Sprintf("the entry %s for %v: a failover may be under way; resumed if still so after %v",
				state, e.NoPrimaryFor.Round(time.Millisecond), wait)}
		}
		return Decision{Resume, "the entry " + state + ": a failover stopped half-way; running it again"}
	}
	if e.PrimaryErr == nil {
		return Decision{Healthy, "the primary answers"}
	}
	if e.Failures < cfg.FailAfter {
		return Decision{Suspect, fmt.Sprintf("own check failed %d of %d rounds needed", e.Failures, cfg.FailAfter)}
	}
	read := 0
	for _, r := range e.Replicas {
		if r.Err != nil {
			continue
		}
		read++
		if r.Receiving {
			return Decision{ReplicaReceives, fmt.Sprintf("replica %s still receives from %s: the primary is alive for replication (a partition between us and it?)", r.Server, r.Source)}
		}
	}
	if read == 0 {
		return Decision{NoReplicaRead, "no replica could be read: none vouches that the primary is gone"}
	}
	switch e.Checker {
	case VerdictHealthy:
		return Decision{CheckerHealthy, "the health checker sees the unit healthy"}
	case VerdictUnknown:
		return Decision{CheckerUnknown, "the health checker's verdict is missing: " + e.CheckerWhy}
	}
	if b.Off {
		return Decision{Off, "the primary is dead, but failover is off (--off or label failover=off)"}
	}
	if !b.LastFailover.IsZero() && now.Sub(b.LastFailover) < cfg.MinInterval {
		return Decision{Damped, fmt.Sprintf("the unit failed over %v ago, less than %v", now.Sub(b.LastFailover).Round(time.Second), cfg.MinInterval)}
	}
	if b.Recent >= cfg.MaxPerHour {
		return Decision{Capped, fmt.Sprintf("%d failovers in the last hour, the cap is %d", b.Recent, cfg.MaxPerHour)}
	}
	return Decision{Failover, "the primary is dead: own check failed, no replica receives from it, and the health checker agrees (or none is configured)"}
}
