package failover

import (
	"context"
	"fmt"
	"net/http"

	"tradeunit"
	"tradeunit/admin"
	"tradeunit/dsn"
	"tradeunit/health"
	"tradeunit/replication"
	"tradeunit/routing"
)

// Observer is the controller's own view of a unit's servers.
type Observer interface {
	// Primary checks the primary of a unit: nil when it answers, with
	// whether it is read-only (fenced).
	Primary(ctx context.Context, d dsn.DSN) (readOnly bool, err error)
	// Replica reads a replica's replication receiver (nil: no source
	// configured).
	Replica(ctx context.Context, d dsn.DSN) (*replication.ReplicaStatus, error)
	// ReadOnly reads whether a (fenced) server is back and read-only.
	ReadOnly(ctx context.Context, d dsn.DSN) (bool, error)
}

// Checker is the second, independent observer: the health checker, which
// probes units through their logic services.
type Checker interface {
	// Report returns the checker's current verdicts.
	Report(ctx context.Context) (*health.Report, error)
}

// Failoverer fails a storage entry over; *admin.Admin is one.
type Failoverer interface {
	FailoverStorage(ctx context.Context, ref routing.StorageRef, o admin.FailoverOptions) (*admin.FailoverResult, error)
	// RejoinStorage brings a fenced server back as a replica, refusing one
	// with errant transactions (Config.Rejoin).
	RejoinStorage(ctx context.Context, ref routing.StorageRef, server string, o admin.FailoverOptions) (*routing.Topology, error)
	// RepointStorage re-points replicas left on an old primary.
	RepointStorage(ctx context.Context, ref routing.StorageRef, o admin.FailoverOptions) ([]string, error)
}

// MariaDB is the Observer of real servers: it connects as the
// administrative user, with the password from the secrets, as a failover
// does (admin.ServerDSN).
type MariaDB struct {
	Admin *admin.Admin
	User  string
}

// Primary inspects the primary (replication.InspectPrimary): an
// unreachable server, or one that does not answer, fails.
func (m MariaDB) Primary(ctx context.Context, d dsn.DSN) (bool, error) { return m.ReadOnly(ctx, d) }

// Replica reads SHOW SLAVE STATUS on the replica (replication.Inspect).
func (m MariaDB) Replica(ctx context.Context, d dsn.DSN) (*replication.ReplicaStatus, error) {
	s, err := m.Admin.ServerDSN(d, m.User)
	if err != nil {
		return nil, err
	}
	st, err := replication.Inspect(ctx, s)
	if err != nil {
		return nil, err
	}
	return st.Replica, nil
}

// ReadOnly inspects the server: reachable, and @@read_only.
func (m MariaDB) ReadOnly(ctx context.Context, d dsn.DSN) (bool, error) {
	s, err := m.Admin.ServerDSN(d, m.User)
	if err != nil {
		return false, err
	}
	st, err := replication.InspectPrimary(ctx, s)
	return st.ReadOnly, err
}

// HealthChecker is the Checker of a running health checker at URL.
type HealthChecker struct {
	URL    string
	Client *http.Client // nil: a plain client
}

// Report fetches the checker's report (health.FetchWith).
func (h HealthChecker) Report(ctx context.Context) (*health.Report, error) {
	c := h.Client
	if c == nil {
		c = &http.Client{}
	}
	return health.FetchWith(ctx, c, h.URL)
}

// Verdict is the checker's view of one unit.
type Verdict int

const (
	// VerdictNone: none is configured; the controller's own checks decide.
	VerdictNone Verdict = iota
	// VerdictHealthy: the checker's probes of the unit succeed.
	VerdictHealthy
	// VerdictFailing: the checker's probes fail (failing or ejected).
	VerdictFailing
	// VerdictUnknown: the checker could not be read or does not know the
	// unit: a second opinion that is missing is not a yes.
	VerdictUnknown
)

// String names the verdict.
func (v Verdict) String() string {
	switch v {
	case VerdictNone:
		return "none"
	case VerdictHealthy:
		return "healthy"
	case VerdictFailing:
		return "failing"
	case VerdictUnknown:
		return "unknown"
	}
	return fmt.Sprintf("Verdict(%d)", int(v))
}

// verdictOf reads unit id's verdict from a report (nil: unknown).
func verdictOf(r *health.Report, id tradeunit.UnitID) (Verdict, string) {
	if r == nil {
		return VerdictUnknown, "checker unreachable"
	}
	for i := range r.Units {
		u := &r.Units[i]
		if u.Unit != id {
			continue
		}
		if u.Verdict == health.Ejected || u.Failing {
			return VerdictFailing, fmt.Sprintf("%s, failing=%t, %d consecutive failures, %s", u.Verdict, u.Failing, u.ConsecutiveFailures, u.LastError)
		}
		if u.Verdict == health.Healthy {
			return VerdictHealthy, fmt.Sprintf("healthy, success rate %.2f", u.SuccessRate)
		}
		return VerdictUnknown, "checker verdict " + u.Verdict
	}
	return VerdictUnknown, "checker does not list the unit"
}
