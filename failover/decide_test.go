package failover_test

import (
	"errors"
	"testing"
	"time"

	"tradeunit/failover"
)

// TestDecide: the primary is declared dead only when every observer
// agrees, and the switches and damping hold a failover back.
func TestDecide(t *testing.T) {
	cfg := failover.DefaultConfig()
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	down := errors.New("dial tcp: connection refused")
	gone := []failover.ReplicaSeen{{Server: "r1:3307", IO: "Connecting"}, {Server: "r2:3308", IO: "Connecting"}}
	dead := failover.Evidence{PrimaryErr: down, Failures: 3, Replicas: gone}
	with := func(e failover.Evidence, f func(*failover.Evidence)) failover.Evidence { f(&e); return e }
	for _, tc := range []struct {
		name string
		e    failover.Evidence
		b    failover.Brakes
		want failover.Outcome
	}{
		{"primary answers", failover.Evidence{Replicas: gone}, failover.Brakes{}, failover.Healthy},
		{"too few failed rounds", with(dead, func(e *failover.Evidence) { e.Failures = 2 }), failover.Brakes{}, failover.Suspect},
		{"all agree, no checker", dead, failover.Brakes{}, failover.Failover},
		{"all agree, checker failing", with(dead, func(e *failover.Evidence) { e.Checker = failover.VerdictFailing }), failover.Brakes{}, failover.Failover},
		{"a replica still receives: a partition from us only", with(dead, func(e *failover.Evidence) {
			e.Replicas = []failover.ReplicaSeen{{Server: "r1:3307", IO: "Connecting"}, {Server: "r2:3308", IO: "Yes", Receiving: true, Source: "p:3306"}}
		}), failover.Brakes{}, failover.ReplicaReceives},
		{"no replica readable", with(dead, func(e *failover.Evidence) {
			e.Replicas = []failover.ReplicaSeen{{Server: "r1:3307", Err: down}, {Server: "r2:3308", Err: down}}
		}), failover.Brakes{}, failover.NoReplicaRead},
		{"one replica unreadable, the other not receiving", with(dead, func(e *failover.Evidence) {
			e.Replicas = []failover.ReplicaSeen{{Server: "r1:3307", Err: down}, {Server: "r2:3308", IO: "Connecting"}}
		}), failover.Brakes{}, failover.Failover},
		{"checker says healthy", with(dead, func(e *failover.Evidence) { e.Checker = failover.VerdictHealthy }), failover.Brakes{}, failover.CheckerHealthy},
		{"checker unreachable", with(dead, func(e *failover.Evidence) { e.Checker = failover.VerdictUnknown }), failover.Brakes{}, failover.CheckerUnknown},
		{"off", dead, failover.Brakes{Off: true}, failover.Off},
		{"failed over 30s ago", dead, failover.Brakes{LastFailover: now.Add(-30 * time.Second)}, failover.Damped},
		{"failed over 2m ago", dead, failover.Brakes{LastFailover: now.Add(-2 * time.Minute)}, failover.Failover},
		{"hourly cap reached", dead, failover.Brakes{Recent: cfg.MaxPerHour}, failover.Capped},
		{"below the hourly cap", dead, failover.Brakes{Recent: cfg.MaxPerHour - 1}, failover.Failover},
		{"no primary after our stopped failover: resume", failover.Evidence{NoPrimary: true, OursStopped: true, Replicas: gone}, failover.Brakes{}, failover.Resume},
		{"no primary for a moment: someone's failover under way", failover.Evidence{NoPrimary: true, NoPrimaryFor: time.Second, Replicas: gone}, failover.Brakes{}, failover.Underway},
		{"no primary for long: resume", failover.Evidence{NoPrimary: true, NoPrimaryFor: time.Hour, Replicas: gone}, failover.Brakes{}, failover.Resume},
		{"no primary but off", failover.Evidence{NoPrimary: true, Replicas: gone}, failover.Brakes{Off: true}, failover.Off},
		{"fenced primary for a moment: someone's failover under way", failover.Evidence{PrimaryFenced: true, NoPrimaryFor: time.Second, Replicas: gone}, failover.Brakes{}, failover.Underway},
		{"fenced primary for long: resume", failover.Evidence{PrimaryFenced: true, NoPrimaryFor: time.Hour, Replicas: gone}, failover.Brakes{}, failover.Resume},
		{"fenced primary that does not answer: a dead one", failover.Evidence{PrimaryFenced: true, PrimaryErr: errors.New("gone"), Failures: 1, Replicas: gone}, failover.Brakes{}, failover.Suspect},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := failover.Decide(cfg, tc.e, tc.b, now)
			if d.Outcome != tc.want {
				t.Errorf("got %s (%s), want %s", d.Outcome, d.Why, tc.want)
			}
		})
	}
}

// TestConfigValidate: the defaults are valid, and Validate changes nothing.
func TestConfigValidate(t *testing.T) {
	if err := failover.DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		f    func(*failover.Config)
	}{
		{"every 0", func(c *failover.Config) { c.Every = 0 }},
		{"fail after 0", func(c *failover.Config) { c.FailAfter = 0 }},
		{"cap 0", func(c *failover.Config) { c.MaxPerHour = 0 }},
		{"negative interval", func(c *failover.Config) { c.MinInterval = -time.Second }},
		{"no admin user", func(c *failover.Config) { c.AdminUser = "" }},
		{"short lease", func(c *failover.Config) { c.LeaseTTL = time.Millisecond }},
		{"no clock", func(c *failover.Config) { c.Now = nil }},
	} {
		c := failover.DefaultConfig()
		tc.f(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: valid, want refused", tc.name)
		}
	}
}
