package proxy

import (
	"context"
	"net/http"
	"time"

	"tradeunit"
	"tradeunit/health"
	"tradeunit/selection"
)

// planner keeps the selection plan current: it rebuilds it when the routing
// table changes, when asked (a checker report, a unit whose calls started or
// stopped failing), when a blacklist entry or a failing unit's hold expires,
// and ten times per balancing window for the request counts. It also drops
// the connections of logic services that left the table.
func (p *Proxy) planner(ctx context.Context) {
	tables := p.routes.Watch(ctx)
	refresh := time.NewTicker(max(p.cfg.BalanceWindow/10, 10*time.Millisecond))
	defer refresh.Stop()
	expiry := time.NewTimer(time.Hour)
	defer expiry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case t, ok := <-tables:
			if !ok {
				return
			}
			p.retainClients(t)
		case <-p.replan:
		case <-refresh.C:
		case <-expiry.C:
		}
		next := p.rebuild()
		if !expiry.Stop() {
			select {
			case <-expiry.C:
			default:
			}
		}
		wait := time.Hour
		if !next.IsZero() {
			wait = max(time.Until(next), time.Millisecond)
		}
		expiry.Reset(wait)
	}
}

// rebuild builds and publishes a new plan from the current inputs, and
// returns when it goes stale by itself (zero: not before an input changes).
func (p *Proxy) rebuild() time.Time {
	passive, passiveNext := p.passive.Snapshot()
	recent := p.balancer.Counts()
	table := p.routes.Current()
	var (
		view    *selection.CheckerView
		version uint64 // of the checker's report; 0: none
	)
	if f := p.checker.Load(); f != nil {
		view, version = f.view, f.version
	}
	plan := selection.Build(selection.Inputs{
		Table: table, Now: time.Now(),
		Checker: view, Passive: passive, Recent: recent,
	})
	p.plan.Store(plan)
	// After the Store: whoever reads the gauges finds the plan in force.
	p.metrics.plan(plan.Units(), recent, table.Revision, version)
	next := plan.NextChange()
	if !passiveNext.IsZero() && (next.IsZero() || passiveNext.Before(next)) {
		next = passiveNext
	}
	return next
}

// askReplan asks the planner for a new plan without waiting.
func (p *Proxy) askReplan() {
	select {
	case p.replan <- struct{}{}:
	default:
	}
}

// followChecker follows the health checker's reports. While it cannot reach
// the checker, the proxy falls back on its own view of the units.
func (p *Proxy) followChecker(ctx context.Context) {
	client := p.health
	if client == nil {
		client = &http.Client{}
	}
	health.FollowWith(ctx, client, p.cfg.Health, func(r *health.Report) {
		first := p.checker.Load() == nil
		p.checker.Store(&followedReport{view: checkerView(r), version: r.Version})
		p.metrics.checker.Set(1)
		p.askReplan()
		if first {
			p.log.Info("following the health checker", "url", p.cfg.Health, "version", r.Version)
		}
	}, func(err error) {
		p.checker.Store(nil)
		p.metrics.checker.Set(0)
		p.askReplan()
		p.log.Warn("health checker unreachable; selecting units by this proxy's own view", "url", p.cfg.Health, "err", err)
	})
}

// followedReport is the checker report the proxy follows: selection's view
// of it, and its version.
type followedReport struct {
	view    *selection.CheckerView
	version uint64
}

// checkerView turns a checker report into selection's input.
func checkerView(r *health.Report) *selection.CheckerView {
	v := &selection.CheckerView{
		Units: make(map[tradeunit.UnitID]selection.Checked, len(r.Units)),
		Panic: map[string]bool{},
	}
	for _, u := range r.Units {
		v.Units[u.Unit] = selection.Checked{Ejected: u.Verdict == health.Ejected, Latency: u.Latency()}
	}
	for _, part := range r.Partitions {
		if part.Panic {
			v.Panic[part.Name] = true
		}
	}
	return v
}
