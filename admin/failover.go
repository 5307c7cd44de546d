package admin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"tradeunit"
	"tradeunit/replication"
	"tradeunit/routing"
	"tradeunit/store/sqlstore"
)

// FailoverOptions configures Failover and Rejoin. The routing table holds
// the application user's DSNs; the replication operations need an
// administrative user (fencing kills connections and sets read_only,
// promotion stops replication) and the replication user that re-pointed
// replicas connect as. The defaults are those of a local replicated set
// (tradeunit mariadb up, replication/localdb).
type FailoverOptions struct {
	AdminUser     string // default root
	AdminPassword string
	ReplUser      string // default repl
	ReplPassword  string // default repl
	// MaxBacklog refuses a replica holding more than this many received
	// but unapplied transactions (0: no bound): applying them would keep
	// the unit without a primary too long.
	MaxBacklog uint64
	// AllowUnreachable promotes even when some replica cannot be read; it
	// may hold acknowledged orders the others lack. Off by default.
	AllowUnreachable bool
	// ApplyTimeout bounds the wait for the chosen replica to apply what it
	// has received (default 30s).
	ApplyTimeout time.Duration
	// AckTimeout bounds the wait for the new primary's first acknowledging
	// replica (default 15s).
	AckTimeout time.Duration
	// Progress, if set, is called after each step.
	Progress func(FailoverStep)
}

func (o *FailoverOptions) setDefaults() {
	if o.AdminUser == "" {
		o.AdminUser = "root"
	}
	if o.ReplUser == "" {
		o.ReplUser, o.ReplPassword = "repl", "repl"
	}
	if o.ApplyTimeout <= 0 {
		o.ApplyTimeout = 30 * time.Second
	}
	if o.AckTimeout <= 0 {
		o.AckTimeout = 15 * time.Second
	}
}

// FailoverStep is one step of a failover, as it went.
type FailoverStep struct {
	Name   string // fence, stop-receiving, unmap, choose, wait-applied, promote, remap, repoint, acknowledged
	Took   time.Duration
	Detail string
}

// FailoverResult says what a failover did.
type FailoverResult struct {
	Unit       tradeunit.UnitID
	OldPrimary string // storage DSN of the old primary ("" if the unit had none)
	// OldFenced is true when the old primary was reached and fenced
	// (read-only, its connections killed); false when it could not be
	// reached (killed, or cut off), in which case every replica stopped
	// receiving from it before one was chosen, so it cannot get a commit
	// acknowledged any more.
	OldFenced  bool
	NewPrimary string   // storage DSN of the promoted replica
	Replicas   []string // the unit's replicas now
	Steps      []FailoverStep
	// Revision is the routing table revision that names the new primary.
	Revision int64
	// Remapped is the time from the start to the routing table naming the
	// new primary; Took, to the new primary having an acknowledging
	// replica (the unit takes changes again).
	Remapped, Took time.Duration
}

// Failover replaces the primary of a unit's replicated storage with its
// most up-to-date replica, in the order that never leaves two writable
// primaries and never loses an acknowledged order:
//
//  1. Check that some replica is safe to promote (replication.MostAdvanced);
//     if none is, refuse with nothing changed.
//  2. Fence the old primary (read-only, its connections killed). If it
//     cannot be reached (a killed server), make every replica stop
//     receiving from it, so that a server that is only cut off from us can
//     get no commit acknowledged.
//  3. Unmap it in the routing table: the unit's primary is cleared and the
//     old one listed as fenced. Logic services stop writing (changes fail
//     with UNIT_UNAVAILABLE and creates go to other units) and serve reads
//     from replicas, marked degraded. The storage mapping is switched
//     before the traffic, as seed 003 demands.
//  4. Choose the replica that has received the most; wait until it has
//     applied it; promote it (writable, semi-sync primary side on).
//  5. Map it: the routing table names it primary and the other replicas as
//     its replicas; the old primary stays listed as fenced until Rejoin.
//  6. Re-point the other replicas to it, and wait until one acknowledges:
//     from then on the unit takes changes again.
//
// A failover stopped between 3 and 5 (say, no replica became safe in
// between) leaves the unit without a primary, readable from its replicas;
// running Failover again resumes it. Errors: PARAM_ERROR for a unit that
// cannot fail over (no replicas, not MariaDB); INVALID_REQUEST wrapping
// replication.ErrNoSafeReplica for a refusal; others for a step that
// failed, naming it.
func (a *Admin) Failover(ctx context.Context, id tradeunit.UnitID, o FailoverOptions) (*FailoverResult, error) {
	o.setDefaults()
	start := time.Now()
	res := &FailoverResult{Unit: id}
	step := func(name string, t0 time.Time, detail string) {
		s := FailoverStep{Name: name, Took: time.Since(t0), Detail: detail}
		res.Steps = append(res.Steps, s)
		if o.Progress != nil {
			o.Progress(s)
		}
	}
	u, err := unit(a.Routes.Current(), id)
	if err != nil {
		return nil, err
	}
	st := u.Storage
	res.OldPrimary = st.Primary
	if len(st.Replicas) == 0 {
		return nil, paramErrorf("unit %d has no replica to promote", id)
	}
	for _, dsn := range slices.Concat([]string{st.Primary}, st.Replicas, st.Fenced) {
		if _, err := o.serverDSN(dsn); dsn != "" && err != nil {
			return nil, paramErrorf("unit %d: %v", id, err)
		}
	}
	policy := replication.Policy{MaxBacklog: o.MaxBacklog, AllowUnreachable: o.AllowUnreachable}

	// 1. Refuse before changing anything when no replica could take over.
	t0 := time.Now()
	if _, err := replication.MostAdvanced(o.inspect(ctx, st.Replicas), policy); err != nil {
		return nil, &tradeunit.Error{Code: tradeunit.CodeInvalidRequest, Op: "admin.Failover", Err: err,
			Message: fmt.Sprintf("failover of unit %d refused, nothing changed", id)}
	}
	step("check", t0, "a replica is safe to promote")

	// 2. Fence the old primary, and any server a stopped failover fenced.
	t0 = time.Now()
	res.OldFenced = true
	var fenced []string
	for _, dsn := range slices.Concat([]string{st.Primary}, st.Fenced) {
		if dsn == "" {
			continue
		}
		err := replication.Fence(ctx, o.mustServerDSN(dsn))
		switch {
		case err == nil:
			fenced = append(fenced, addrOf(dsn)+" fenced")
		case errors.Is(err, replication.ErrUnreachable):
			res.OldFenced = false
			fenced = append(fenced, addrOf(dsn)+" unreachable")
		default:
			return res, fmt.Errorf("failover of unit %d: fence %s: %w", id, addrOf(dsn), err)
		}
	}
	step("fence", t0, strings.Join(fenced, ", "))
	if !res.OldFenced {
		t0 = time.Now()
		var stopped []string
		for _, dsn := range st.Replicas {
			err := replication.StopReceiving(ctx, o.mustServerDSN(dsn))
			if err != nil {
				stopped = append(stopped, addrOf(dsn)+": "+err.Error())
			} else {
				stopped = append(stopped, addrOf(dsn))
			}
		}
		step("stop-receiving", t0, strings.Join(stopped, ", "))
	}

	// 3. Unmap the old primary: no logic service writes to it any more.
	if st.Primary != "" {
		t0 = time.Now()
		_, err := a.update(ctx, fmt.Sprintf("failover %d: unmap primary %s", id, addrOf(st.Primary)), func(t *routing.Table) error {
			u, err := unit(t, id)
			if err != nil {
				return err
			}
			if u.Storage.Primary != st.Primary {
				return paramErrorf("unit %d: its primary changed meanwhile", id)
			}
			u.Storage.Primary = ""
			u.Storage.Fenced = append(u.Storage.Fenced, st.Primary)
			return nil
		})
		if err != nil {
			return res, fmt.Errorf("failover of unit %d: unmap the old primary (it is fenced; re-run to resume): %w", id, err)
		}
		step("unmap", t0, "routing table: unit has no primary; "+addrOf(st.Primary)+" listed as fenced")
	}

	// 4. Choose now that nothing moves; wait; promote.
	t0 = time.Now()
	cands := o.inspect(ctx, st.Replicas)
	chosen, err := replication.MostAdvanced(cands, policy)
	if err != nil {
		return res, fmt.Errorf("failover of unit %d stopped with the old primary fenced and unmapped (reads go to the replicas; re-run once a replica is safe): %w", id, err)
	}
	newPrimary := chosenDSN(st.Replicas, chosen)
	res.NewPrimary = newPrimary
	newAdmin := o.mustServerDSN(newPrimary)
	step("choose", t0, describe(cands, chosen))

	t0 = time.Now()
	actx, cancel := context.WithTimeout(ctx, o.ApplyTimeout)
	err = replication.WaitApplied(actx, newAdmin)
	cancel()
	if err != nil {
		return res, fmt.Errorf("failover of unit %d: %s applying what it received (re-run to resume): %w", id, chosen.Name, err)
	}
	step("wait-applied", t0, chosen.Name)
	t0 = time.Now()
	if err := replication.Promote(ctx, newAdmin); err != nil {
		return res, fmt.Errorf("failover of unit %d: promote %s (re-run to resume): %w", id, chosen.Name, err)
	}
	step("promote", t0, chosen.Name+" writable")

	// 5. Map the new primary: the logic services open it.
	t0 = time.Now()
	var others []string
	for _, dsn := range st.Replicas {
		if dsn != newPrimary {
			others = append(others, dsn)
		}
	}
	t, err := a.update(ctx, fmt.Sprintf("failover %d: primary %s", id, chosen.Name), func(t *routing.Table) error {
		u, err := unit(t, id)
		if err != nil {
			return err
		}
		if u.Storage.Primary != "" || !slices.Contains(u.Storage.Replicas, newPrimary) {
			return paramErrorf("unit %d: its storage changed meanwhile", id)
		}
		u.Storage.Primary = newPrimary
		u.Storage.Replicas = slices.DeleteFunc(u.Storage.Replicas, func(d string) bool { return d == newPrimary })
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("failover of unit %d: %s is promoted but the routing table could not name it (re-run to resume): %w", id, chosen.Name, err)
	}
	res.Revision, res.Remapped = t.Revision, time.Since(start)
	res.Replicas = others
	step("remap", t0, fmt.Sprintf("routing table revision %d: primary %s", t.Revision, chosen.Name))

	// 6. Re-point the other replicas; the unit takes changes once one
	// acknowledges.
	t0 = time.Now()
	src, err := o.source(newPrimary)
	if err != nil {
		return res, err
	}
	var repointErrs []error
	for _, dsn := range others {
		if err := replication.Repoint(ctx, o.mustServerDSN(dsn), src); err != nil {
			repointErrs = append(repointErrs, fmt.Errorf("%s: %w", addrOf(dsn), err))
		}
	}
	step("repoint", t0, fmt.Sprintf("%d replica(s) to %s", len(others)-len(repointErrs), chosen.Name))
	t0 = time.Now()
	if err := waitAcknowledged(ctx, newAdmin, o.AckTimeout); err != nil {
		return res, fmt.Errorf("failover of unit %d: %s is the primary but %w (repoint errors: %v)", id, chosen.Name, err, errors.Join(repointErrs...))
	}
	res.Took = time.Since(start)
	step("acknowledged", t0, "a replica acknowledges: the unit takes changes")
	if len(repointErrs) > 0 {
		return res, fmt.Errorf("failover of unit %d done, but some replicas were not re-pointed: %w", id, errors.Join(repointErrs...))
	}
	return res, nil
}

// inspect reads every replica as the administrative user; a candidate is
// named by its address, never its DSN (which holds a password).
func (o *FailoverOptions) inspect(ctx context.Context, replicas []string) []replication.Candidate {
	cands := make([]replication.Candidate, len(replicas))
	for i, dsn := range replicas {
		ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := replication.Inspect(ictx, o.mustServerDSN(dsn))
		cancel()
		cands[i] = replication.Candidate{Name: addrOf(dsn), Status: st, Err: err}
	}
	return cands
}

// chosenDSN returns the storage DSN of the replica MostAdvanced chose.
func chosenDSN(replicas []string, chosen replication.Candidate) string {
	for _, dsn := range replicas {
		if addrOf(dsn) == chosen.Name {
			return dsn
		}
	}
	return ""
}

// describe says what each candidate had received, and which was chosen.
func describe(cands []replication.Candidate, chosen replication.Candidate) string {
	var parts []string
	for _, c := range cands {
		switch {
		case c.Err != nil:
			parts = append(parts, addrOf(c.Name)+" unreachable")
		case c.Status.Replica != nil:
			parts = append(parts, fmt.Sprintf("%s received %s applied %s", addrOf(c.Name), c.Status.Replica.ReceivedPos, c.Status.Replica.AppliedPos))
		}
	}
	return "chose " + chosen.Name + " (" + strings.Join(parts, "; ") + ")"
}

// waitAcknowledged waits until the primary of dsn has a replica that
// acknowledges its commits.
func waitAcknowledged(ctx context.Context, dsn string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last string
	for {
		st, err := replication.Inspect(ctx, dsn)
		if err == nil {
			ok, why := st.Writable(0)
			if ok {
				return nil
			}
			last = why
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no replica acknowledges after %v: %s", timeout, last)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// serverDSN turns a storage DSN of the table (mysql:USER:PASS@tcp(HOST:PORT)/DB)
// into the go-sql-driver DSN of the administrative user on that server.
func (o *FailoverOptions) serverDSN(dsn string) (string, error) {
	cfg, err := parseStorageDSN(dsn)
	if err != nil {
		return "", err
	}
	cfg.User, cfg.Passwd, cfg.DBName = o.AdminUser, o.AdminPassword, ""
	return cfg.FormatDSN(), nil
}

// mustServerDSN is serverDSN for a DSN Failover has checked already.
func (o *FailoverOptions) mustServerDSN(dsn string) string {
	s, _ := o.serverDSN(dsn)
	return s
}

// source is how replicas reach the server of dsn.
func (o *FailoverOptions) source(dsn string) (replication.Source, error) {
	cfg, err := parseStorageDSN(dsn)
	if err != nil {
		return replication.Source{}, err
	}
	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return replication.Source{}, fmt.Errorf("storage %s: address %q: %w", addrOf(dsn), cfg.Addr, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return replication.Source{}, fmt.Errorf("storage %s: port %q: %w", addrOf(dsn), port, err)
	}
	return replication.Source{Host: host, Port: p, User: o.ReplUser, Password: o.ReplPassword}, nil
}

func parseStorageDSN(dsn string) (*mysql.Config, error) {
	rest, ok := strings.CutPrefix(dsn, "mysql:")
	if !ok {
		return nil, fmt.Errorf("storage %q is not MariaDB (mysql:...): it has no replication to fail over", sqlstore.Redact(dsn))
	}
	cfg, err := mysql.ParseDSN(rest)
	if err != nil {
		return nil, fmt.Errorf("storage %q: %w", sqlstore.Redact(dsn), err)
	}
	if cfg.Net != "tcp" {
		return nil, fmt.Errorf("storage %q: want tcp(HOST:PORT), replicas must reach it", sqlstore.Redact(dsn))
	}
	return cfg, nil
}

// addrOf names the server of a storage DSN (host:port) for messages.
func addrOf(dsn string) string {
	if cfg, err := parseStorageDSN(dsn); err == nil {
		return cfg.Addr
	}
	return sqlstore.Redact(dsn)
}

// Rejoin brings back the servers a failover fenced in unit id as replicas
// of its primary (replication.Rejoin): each must run again, read-only, and
// after a crash started as a replica (init_rpl_role=SLAVE), so that crash
// recovery truncated the transactions it held unacknowledged. One that
// still holds transactions the primary lacks (errant GTIDs) is refused: it
// must be rebuilt from the primary first (its data replaced by a copy).
// Each server that rejoins moves from the unit's fenced list to its
// replicas, for eventual reads and failover. server selects one fenced
// server by address (host:port); "" rejoins them all. Errors: PARAM_ERROR
// for a unit without a primary or without such a fenced server; an error
// wrapping replication.ErrErrantGTIDs for a server that must be rebuilt.
func (a *Admin) Rejoin(ctx context.Context, id tradeunit.UnitID, server string, o FailoverOptions) (*routing.Table, error) {
	o.setDefaults()
	u, err := unit(a.Routes.Current(), id)
	if err != nil {
		return nil, err
	}
	st := u.Storage
	if st.Primary == "" {
		return nil, paramErrorf("unit %d has no primary to rejoin (failing over: run the failover again)", id)
	}
	var todo []string
	for _, dsn := range st.Fenced {
		if server == "" || addrOf(dsn) == server {
			todo = append(todo, dsn)
		}
	}
	if len(todo) == 0 {
		return nil, paramErrorf("unit %d has no fenced server %s", id, server)
	}
	primaryAdmin, err := o.serverDSN(st.Primary)
	if err != nil {
		return nil, paramErrorf("unit %d: %v", id, err)
	}
	src, err := o.source(st.Primary)
	if err != nil {
		return nil, err
	}
	var t *routing.Table
	for _, dsn := range todo {
		admin, err := o.serverDSN(dsn)
		if err != nil {
			return t, paramErrorf("unit %d: %v", id, err)
		}
		if err := replication.Rejoin(ctx, admin, primaryAdmin, src); err != nil {
			return t, fmt.Errorf("rejoin %s to unit %d: %w", addrOf(dsn), id, err)
		}
		t, err = a.update(ctx, fmt.Sprintf("rejoin %d: replica %s", id, addrOf(dsn)), func(t *routing.Table) error {
			u, err := unit(t, id)
			if err != nil {
				return err
			}
			if u.Storage.Primary != st.Primary || !slices.Contains(u.Storage.Fenced, dsn) {
				return paramErrorf("unit %d: its storage changed meanwhile", id)
			}
			u.Storage.Fenced = slices.DeleteFunc(u.Storage.Fenced, func(d string) bool { return d == dsn })
			u.Storage.Replicas = append(u.Storage.Replicas, dsn)
			return nil
		})
		if err != nil {
			return t, fmt.Errorf("rejoin %s to unit %d: it replicates, but the routing table could not list it: %w", addrOf(dsn), id, err)
		}
	}
	return t, nil
}
