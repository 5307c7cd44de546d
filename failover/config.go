package failover

import (
	"errors"
	"time"

	"tradeunit"
)

// Config is the failover controller's pace, patience and brakes. Start from
// DefaultConfig.
type Config struct {
	// Every is the time between two rounds of checks.
	Every time.Duration
	// FailAfter is how many rounds in a row the controller's own check of a
	// primary must fail before it is suspected dead: one lost check is a
	// hiccup, not an outage.
	FailAfter int
	// CheckTimeout bounds each check of one server, so that a black-holed
	// one costs a round no more than this.
	CheckTimeout time.Duration
	// HealthURL is the health checker's base URL; when set, its verdict
	// is the second observer: the unit must also be failing or ejected
	// there. "": the controller's own checks and the replicas decide.
	HealthURL string
	// MinInterval is the least time between two failovers of one unit
	// (the topology's LastFailover counts too): a unit that fails again
	// right after a failover has a problem a failover does not fix.
	MinInterval time.Duration
	// MaxPerHour caps the failovers of all units in an hour: many at once
	// means the controller's view, not the storage, is broken.
	MaxPerHour int
	// Off stops every failover; the controller still checks, decides,
	// logs and exports metrics. Per unit, the label failover=off does the
	// same at run time (see OffLabel).
	Off bool
	// Rejoin brings a fenced old primary back as a replica
	// (admin.RejoinStorage) once it answers again read-only: restarted as
	// a replica, its crash recovery dropped what no replica acknowledged.
	// One holding errant transactions is refused (it must be rebuilt) and
	// tried again after MinInterval. Off: the operator runs admin rejoin.
	Rejoin bool
	// AdminUser and ReplUser are the users the checks and the failover
	// connect as (passwords from the secrets); ApplyTimeout and AckTimeout
	// bound a failover's waits (admin.FailoverOptions).
	AdminUser, ReplUser      string
	ApplyTimeout, AckTimeout time.Duration
	// LockRetry is how often a standby controller tries a table file's
	// lock; LeaseTTL is how long an etcd election lease lasts unrenewed.
	LockRetry time.Duration
	LeaseTTL  time.Duration
	// Now is the clock.
	Now func() time.Time
	// AfterStep, if set, is called after each step of a failover the
	// controller runs, with the step's name: where a fault test crashes
	// the controller (tradeunit failover-controller --crash-after-step).
	AfterStep func(step string)
}

// DefaultConfig returns the configuration tradeunit failover-controller
// starts with: a check every 500ms, dead after 3 failed rounds, at most
// one failover per unit a minute and 5 an hour.
func DefaultConfig() Config {
	o := defaultOptions()
	return Config{
		Every: 500 * time.Millisecond, FailAfter: 3, CheckTimeout: time.Second, MinInterval: time.Minute, MaxPerHour: 5,
		AdminUser: o.AdminUser, ReplUser: o.ReplUser, ApplyTimeout: o.ApplyTimeout, AckTimeout: o.AckTimeout,
		LockRetry: time.Second, LeaseTTL: 10 * time.Second, Now: time.Now,
	}
}

// Validate reports a bad setting; it changes nothing. Errors: PARAM_ERROR.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, tradeunit.Errorf(tradeunit.CodeParamError, "failover: "+format, args...))
	}
	if c.Every <= 0 || c.CheckTimeout <= 0 || c.LockRetry <= 0 || c.ApplyTimeout <= 0 || c.AckTimeout <= 0 {
		bad("every, check timeout, lock retry, apply and ack timeouts must be positive")
	}
	if c.FailAfter < 1 {
		bad("fail after must be at least 1 round, got %d", c.FailAfter)
	}
	if c.MinInterval < 0 {
		bad("min interval must not be negative, got %s", c.MinInterval)
	}
	if c.MaxPerHour < 1 {
		bad("max per hour must be at least 1 (use off to stop failovers), got %d", c.MaxPerHour)
	}
	if c.LeaseTTL < time.Second {
		bad("lease TTL must be at least 1s (etcd counts it in seconds), got %s", c.LeaseTTL)
	}
	if c.AdminUser == "" || c.ReplUser == "" {
		bad("an admin user and a replication user are required")
	}
	if c.Now == nil {
		bad("no clock")
	}
	return errors.Join(errs...)
}
