package admin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"tradeunit"
	"tradeunit/dsn"
	"tradeunit/replication"
	"tradeunit/routing"
)

// FailoverOptions configures Failover and Rejoin. Start from
// DefaultFailoverOptions. The storage topology holds the application user's
// DSNs; the replication operations need an administrative user (fencing
// kills connections and sets read_only, promotion stops replication) and
// the replication user that re-pointed replicas connect as. Their passwords
// come from Admin.Passwords (the secrets file or environment), never from
// flags.
type FailoverOptions struct {
	AdminUser string
	ReplUser  string
	// MaxBacklog refuses a replica holding more than this many received
	// but unapplied transactions (0: no bound): applying them would keep
	// the unit without a primary too long.
	MaxBacklog uint64
	// AllowUnreachable promotes even when some replica cannot be read; it
	// may hold acknowledged orders the others lack. Off by default.
	AllowUnreachable bool
	// ApplyTimeout bounds the wait for the chosen replica to apply what it
	// has received.
	ApplyTimeout time.Duration
	// AckTimeout bounds the wait for the new primary's first acknowledging
	// replica.
	AckTimeout time.Duration
	// Progress, if set, is called after each step.
	Progress func(FailoverStep)
	// AvoidZone, if set, is a zone being evacuated: only replicas of a
	// known zone outside it may be promoted, and when the old primary is
	// fenced alive, its whole binlog (not only what was acknowledged) must
	// reach the chosen replica first, so that nothing it committed is lost
	// and it can rejoin as a replica without errant transactions.
	AvoidZone string

	passwords dsn.Passwords // the Admin's, set by Failover and Rejoin
}

// DefaultFailoverOptions returns the options of tradeunit admin failover:
// the users of a local replicated set (root and repl).
func DefaultFailoverOptions() FailoverOptions {
	return FailoverOptions{AdminUser: "root", ReplUser: "repl", ApplyTimeout: 30 * time.Second, AckTimeout: 15 * time.Second}
}

func (o FailoverOptions) validate() error {
	if o.AdminUser == "" || o.ReplUser == "" || o.ApplyTimeout <= 0 || o.AckTimeout <= 0 {
		return paramErrorf("failover: an admin user, a replication user and positive timeouts are required")
	}
	return nil
}

// FailoverStep is one step of a failover, as it went.
type FailoverStep struct {
	Name   string // fence, stop-receiving, unmap, choose, wait-applied, promote, remap, repoint, acknowledged
	Took   time.Duration
	Detail string
}

// FailoverResult says what a failover did.
type FailoverResult struct {
	// Target is the entry of the storage topology failed over.
	Target routing.StorageRef
	// Unit is Target's number when it is a unit's storage (0 for a
	// directory shard's).
	Unit tradeunit.UnitID
	// Colocated are the other entries on the same servers, failed over
	// with Target (see colocated): read_only and promotion act on whole
	// servers, so they moved in the same topology changes.
	Colocated  []routing.StorageRef
	OldPrimary dsn.DSN // of the old primary (the zero DSN if the entry had none)
	// OldFenced is true when the old primary was reached and fenced
	// (read-only, its connections killed); false when it could not be
	// reached (killed, or cut off), in which case every replica stopped
	// receiving from it before one was chosen, so it cannot get a commit
	// acknowledged any more.
	OldFenced  bool
	NewPrimary dsn.DSN   // of the promoted replica
	Replicas   []dsn.DSN // the entry's replicas now
	Steps      []FailoverStep
	// Revision is the storage topology revision that names the new primary.
	Revision int64
	// Remapped is the time from the start to the topology naming the new
	// primary; Took, to the new primary having an acknowledging
	// replica (the unit or shard takes changes again).
	Remapped, Took time.Duration
}

// Failover fails over unit id's storage: FailoverStorage of its entry.
func (a *Admin) Failover(ctx context.Context, id tradeunit.UnitID, o FailoverOptions) (*FailoverResult, error) {
	return a.FailoverStorage(ctx, routing.UnitRef(id), o)
}

// FailoverShard fails over directory shard id's storage: FailoverStorage
// of its entry. The shard's services follow the topology like a unit's
// logic services: they refuse changes (UNIT_UNAVAILABLE, NOT_SERVING on
// gRPC health) from the fence until the new primary is mapped and
// acknowledged, so creates and lookups of the shard's keys fail meanwhile
// and those of other shards go on.
func (a *Admin) FailoverShard(ctx context.Context, id routing.ShardID, o FailoverOptions) (*FailoverResult, error) {
	return a.FailoverStorage(ctx, routing.ShardRef(id), o)
}

// FailoverStorage replaces the primary of one replicated storage of the
// topology (a unit's or a directory shard's, ref) with its most up-to-date
// replica, in the order that never leaves two writable primaries and never
// loses an acknowledged change:
//
//  1. Check that some replica is safe to promote (replication.MostAdvanced);
//     if none is, refuse with nothing changed.
//  2. Fence the old primary (read-only, its connections killed). If it
//     cannot be reached (a killed server), make every replica stop
//     receiving from it, so that a server that is only cut off from us can
//     get no commit acknowledged.
//  3. Unmap it in the storage topology: the entry's primary is cleared and
//     the old one listed as fenced. Its services stop writing (changes fail
//     with UNIT_UNAVAILABLE: creates go to other units; a shard's keys can
//     be neither reserved nor committed) and a unit's serve reads from
//     replicas, marked degraded. The storage mapping is switched before the
//     traffic, as seed 003 demands.
//  4. Choose the replica that has received the most; wait until it has
//     applied it; promote it (writable, semi-sync primary side on).
//  5. Map it: the topology names it primary and the other replicas as its
//     replicas; the old primary stays listed as fenced until Rejoin.
//  6. Re-point the other replicas to it, and wait until one acknowledges:
//     from then on the entry's services take changes again (they take none
//     from a primary without an acknowledging replica).
//
// The other entries on the same servers in the same roles (a unit and a
// shard on one MariaDB set) move with it, in the same topology changes:
// fencing and promotion act on whole servers (see colocated). An entry
// sharing a server in another role is refused before anything changes.
//
// A failover stopped between 3 and 5 (say, no replica became safe in
// between) leaves the entry without a primary, readable from its replicas;
// running FailoverStorage again resumes it. Errors: PARAM_ERROR for an
// entry that cannot fail over (no replicas, not MariaDB, unknown, sharing
// servers in other roles); INVALID_REQUEST wrapping
// replication.ErrNoSafeReplica for a refusal; others for a step that
// failed, naming it.
func (a *Admin) FailoverStorage(ctx context.Context, ref routing.StorageRef, o FailoverOptions) (*FailoverResult, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	o.passwords = a.Passwords
	start := time.Now()
	res := &FailoverResult{Target: ref}
	if ref.Kind == routing.UnitStorageKind {
		res.Unit = tradeunit.UnitID(ref.ID)
	}
	step := func(name string, t0 time.Time, detail string) {
		s := FailoverStep{Name: name, Took: time.Since(t0), Detail: detail}
		res.Steps = append(res.Steps, s)
		if o.Progress != nil {
			o.Progress(s)
		}
	}
	st, top, err := a.entryOf(ref)
	if err != nil {
		return nil, err
	}
	res.OldPrimary = st.Primary
	if len(st.Replicas) == 0 {
		return nil, paramErrorf("%s has no replica to promote", ref)
	}
	for _, d := range slices.Concat([]dsn.DSN{st.Primary}, st.Replicas, st.Fenced) {
		if _, err := o.serverDSN(d); d != (dsn.DSN{}) && err != nil {
			return nil, paramErrorf("%s: %v", ref, err)
		}
	}
	if res.Colocated, err = colocated(top, ref, st); err != nil {
		return nil, err
	}
	group := append([]routing.StorageRef{ref}, res.Colocated...)
	what := names(group)
	policy := replication.Policy{MaxBacklog: o.MaxBacklog, AllowUnreachable: o.AllowUnreachable}
	eligible := st.Replicas
	if o.AvoidZone != "" {
		if eligible = outsideZone(top, st.Replicas, o.AvoidZone); len(eligible) == 0 {
			return nil, paramErrorf("%s has no replica of a known zone outside zone %s to promote", what, o.AvoidZone)
		}
	}

	// 1. Refuse before changing anything when no replica could take over.
	t0 := time.Now()
	if _, _, err := pick(o.inspect(ctx, eligible), policy); err != nil {
		return nil, &tradeunit.Error{Code: tradeunit.CodeInvalidRequest, Op: "admin.Failover", Err: err,
			Message: fmt.Sprintf("failover of %s refused, nothing changed", what)}
	}
	step("check", t0, "a replica is safe to promote")

	// 2. Fence the old primary, and any server a stopped failover fenced.
	t0 = time.Now()
	res.OldFenced = true
	var fenced []string
	for _, d := range slices.Concat([]dsn.DSN{st.Primary}, st.Fenced) {
		if d == (dsn.DSN{}) {
			continue
		}
		err := replication.Fence(ctx, o.mustServerDSN(d))
		switch {
		case err == nil:
			fenced = append(fenced, d.Server()+" fenced")
		case errors.Is(err, replication.ErrUnreachable):
			res.OldFenced = false
			fenced = append(fenced, d.Server()+" unreachable")
		default:
			return res, fmt.Errorf("failover of %s: fence %s: %w", what, d.Server(), err)
		}
	}
	step("fence", t0, strings.Join(fenced, ", "))
	if !res.OldFenced {
		// All at once: a replica's receiver blocked on a primary that is
		// cut off (not dead) takes seconds to stop.
		t0 = time.Now()
		stopped := make([]string, len(st.Replicas))
		var wg sync.WaitGroup
		for i, d := range st.Replicas {
			wg.Go(func() {
				stopped[i] = d.Server()
				if err := replication.StopReceiving(ctx, o.mustServerDSN(d)); err != nil {
					stopped[i] += ": " + err.Error()
				}
			})
		}
		wg.Wait()
		step("stop-receiving", t0, strings.Join(stopped, ", "))
	}
	if o.AvoidZone != "" {
		t0 = time.Now()
		detail, err := o.mustHave(ctx, &st, eligible, res.OldFenced, &policy)
		if err != nil {
			return res, fmt.Errorf("failover of %s stopped with the old primary fenced (re-run to resume): %w", what, err)
		}
		step("must-have", t0, detail)
	}

	// 3. Unmap the old primary: no service writes to it any more.
	if st.HasPrimary() {
		t0 = time.Now()
		before := serversOf(st)
		_, err := a.updateStorage(ctx, fmt.Sprintf("failover %s: unmap primary %s", what, st.Primary.Server()), func(t *routing.Topology) error {
			for _, r := range group {
				e, ok := t.Entry(r)
				if !ok || !serversOf(*e).equal(before) {
					return paramErrorf("%s: its primary changed meanwhile", r)
				}
				e.Fenced = append(e.Fenced, e.Primary)
				e.Primary = dsn.DSN{}
			}
			return nil
		})
		if err != nil {
			return res, fmt.Errorf("failover of %s: unmap the old primary (it is fenced; re-run to resume): %w", what, err)
		}
		step("unmap", t0, "storage topology: "+what+" without a primary; "+st.Primary.Server()+" listed as fenced")
	}

	// 4. Choose now that nothing moves; wait; promote.
	t0 = time.Now()
	cands, chosen, promoted, err := o.choose(ctx, eligible, policy, o.AvoidZone != "" && res.OldFenced)
	if err != nil {
		return res, fmt.Errorf("failover of %s stopped with the old primary fenced and unmapped (reads go to the replicas; re-run once a replica is safe): %w", what, err)
	}
	newPrimary := chosenDSN(eligible, chosen)
	res.NewPrimary = newPrimary
	newAdmin := o.mustServerDSN(newPrimary)
	step("choose", t0, describe(cands, chosen))

	if promoted {
		step("promote", time.Now(), chosen.Name+" is writable already: a stopped failover promoted it")
	} else {
		t0 = time.Now()
		actx, cancel := context.WithTimeout(ctx, o.ApplyTimeout)
		err = replication.WaitApplied(actx, newAdmin)
		cancel()
		if err != nil {
			return res, fmt.Errorf("failover of %s: %s applying what it received (re-run to resume): %w", what, chosen.Name, err)
		}
		step("wait-applied", t0, chosen.Name)
		t0 = time.Now()
		if err := replication.Promote(ctx, newAdmin); err != nil {
			return res, fmt.Errorf("failover of %s: promote %s (re-run to resume): %w", what, chosen.Name, err)
		}
		step("promote", t0, chosen.Name+" writable")
	}

	// 5. Map the new primary: the services open it.
	t0 = time.Now()
	var others []dsn.DSN
	for _, d := range st.Replicas {
		if d != newPrimary {
			others = append(others, d)
		}
	}
	t, err := a.updateStorage(ctx, fmt.Sprintf("failover %s: primary %s", what, chosen.Name), func(t *routing.Topology) error {
		now := time.Now().UTC()
		for _, r := range group {
			e, ok := t.Entry(r)
			i := -1
			if ok {
				i = onServer(e.Replicas, chosen.Name)
			}
			if !ok || e.HasPrimary() || i < 0 {
				return paramErrorf("%s: its storage changed meanwhile", r)
			}
			e.Primary = e.Replicas[i]
			e.Replicas = slices.Delete(e.Replicas, i, i+1)
			t.SetLastFailover(r, now)
		}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("failover of %s: %s is promoted but the storage topology could not name it (re-run to resume): %w", what, chosen.Name, err)
	}
	res.Revision, res.Remapped = t.Revision, time.Since(start)
	res.Replicas = others
	step("remap", t0, fmt.Sprintf("storage topology revision %d: primary %s", t.Revision, chosen.Name))

	// 6. Re-point the other replicas; the services take changes once one
	// acknowledges.
	t0 = time.Now()
	src, err := o.source(newPrimary)
	if err != nil {
		return res, err
	}
	var repointErrs []error
	for _, d := range others {
		if err := replication.Repoint(ctx, o.mustServerDSN(d), src); err != nil {
			repointErrs = append(repointErrs, fmt.Errorf("%s: %w", d.Server(), err))
		}
	}
	step("repoint", t0, fmt.Sprintf("%d replica(s) to %s", len(others)-len(repointErrs), chosen.Name))
	t0 = time.Now()
	if err := waitAcknowledged(ctx, newAdmin, o.AckTimeout); err != nil {
		return res, fmt.Errorf("failover of %s: %s is the primary but %w (repoint errors: %v)", what, chosen.Name, err, errors.Join(repointErrs...))
	}
	res.Took = time.Since(start)
	step("acknowledged", t0, "a replica acknowledges: "+what+takes(group)+" changes")
	if len(repointErrs) > 0 {
		return res, fmt.Errorf("failover of %s done, but some replicas were not re-pointed: %w", what, errors.Join(repointErrs...))
	}
	return res, nil
}

// choose inspects the replicas and picks the one to promote. With wait
// (p.MustHave is a fenced live primary's binlog position, which the
// replicas are still receiving) a refusal is retried until ApplyTimeout.
func (o *FailoverOptions) choose(ctx context.Context, replicas []dsn.DSN, p replication.Policy, wait bool) (cands []replication.Candidate, chosen replication.Candidate, promoted bool, err error) {
	deadline := time.Now().Add(o.ApplyTimeout)
	for {
		cands = o.inspect(ctx, replicas)
		chosen, promoted, err = pick(cands, p)
		if err == nil || !wait || time.Now().After(deadline) {
			return cands, chosen, promoted, err
		}
		select {
		case <-ctx.Done():
			return cands, chosen, promoted, err
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// pick chooses the replica to promote (replication.MostAdvanced), unless
// one of them is a writable primary already: a failover stopped between
// its promote and its remap (its controller killed) left it so, mapped
// nowhere and so written by no service, and promoting another would make
// two writable primaries. That one is taken again, promoted is true, if it
// holds at least what every other replica received and p.MustHave;
// otherwise the failover is refused, to be sorted out by hand.
func pick(cands []replication.Candidate, p replication.Policy) (chosen replication.Candidate, promoted bool, err error) {
	for _, c := range cands {
		if c.Err != nil || c.Status.Role() != replication.RolePrimary {
			continue
		}
		have, _ := c.Status.BinlogPos.Seq(p.Domain)
		if want, ok := p.MustHave.Seq(p.Domain); ok && have < want {
			return c, false, &replication.NoSafeReplicaError{Reasons: []string{fmt.Sprintf("%s: writable, not a replica, and lacks acknowledged %d (has %d)", c.Name, want, have)}}
		}
		for _, r := range cands {
			if r.Err != nil || r.Status.Replica == nil {
				continue
			}
			recv, _ := r.Status.Replica.ReceivedPos.Seq(p.Domain)
			applied, _ := r.Status.Replica.AppliedPos.Seq(p.Domain)
			if max(recv, applied) > have {
				return c, false, &replication.NoSafeReplicaError{Reasons: []string{fmt.Sprintf(
					"%s: writable and not a replica (promoted by a stopped failover?), but %s has received more (%d > %d): resolve by hand", c.Name, r.Name, max(recv, applied), have)}}
			}
		}
		return c, true, nil
	}
	chosen, err = replication.MostAdvanced(cands, p)
	return chosen, false, err
}

// mustHave sets p.MustHave for a failover that avoids a zone, whose
// replicas there will not be promoted but may hold what the others lack.
// With the old primary fenced alive, that is its whole binlog. With it
// unreachable, it is what the replicas in the zone received: semi-sync may
// have had a commit acknowledged by one of them alone, and one that cannot
// be read refuses the failover unless p.AllowUnreachable.
func (o *FailoverOptions) mustHave(ctx context.Context, st *routing.Storage, eligible []dsn.DSN, oldFenced bool, p *replication.Policy) (string, error) {
	if oldFenced && st.HasPrimary() {
		old, err := replication.Inspect(ctx, o.mustServerDSN(st.Primary))
		if err != nil {
			return "", fmt.Errorf("read the fenced primary's binlog position: %w", err)
		}
		p.MustHave = old.BinlogPos
		return fmt.Sprintf("the chosen replica must receive %s, all the fenced primary wrote", old.BinlogPos), nil
	}
	var inZone []dsn.DSN
	for _, d := range st.Replicas {
		if !slices.Contains(eligible, d) {
			inZone = append(inZone, d)
		}
	}
	best := uint64(0)
	for _, c := range o.inspect(ctx, inZone) {
		switch {
		case c.Err != nil && !p.AllowUnreachable:
			return "", fmt.Errorf("%w: %s in zone %s is unreachable and may hold acknowledged commits the others lack", replication.ErrNoSafeReplica, c.Name, o.AvoidZone)
		case c.Err != nil || c.Status.Replica == nil:
		default:
			if seq, _ := c.Status.Replica.ReceivedPos.Seq(p.Domain); seq > best {
				best, p.MustHave = seq, c.Status.Replica.ReceivedPos
			}
		}
	}
	return fmt.Sprintf("the chosen replica must receive %s, what the replicas in zone %s received", p.MustHave, o.AvoidZone), nil
}

// outsideZone returns the replicas whose server has a known zone other
// than zone (zones from the whole topology, see zoneOf).
func outsideZone(t *routing.Topology, replicas []dsn.DSN, zone string) []dsn.DSN {
	var out []dsn.DSN
	for _, d := range replicas {
		if z, ok := zoneOf(t, d.Server()); ok && z != zone {
			out = append(out, d)
		}
	}
	return out
}

// zoneOf returns the zone of a storage server: the first entry of t that
// names one for it (a server is one machine, so entries on the same
// servers agree; an operator may have set it on only one of them).
func zoneOf(t *routing.Topology, server string) (string, bool) {
	for _, r := range t.Refs() {
		if e, ok := t.Entry(r); ok {
			if z, ok := e.Zones[server]; ok {
				return z, true
			}
		}
	}
	return "", false
}

// inspect reads every replica as the administrative user; a candidate is
// named by its server (host:port).
func (o *FailoverOptions) inspect(ctx context.Context, replicas []dsn.DSN) []replication.Candidate {
	cands := make([]replication.Candidate, len(replicas))
	for i, d := range replicas {
		ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := replication.Inspect(ictx, o.mustServerDSN(d))
		cancel()
		cands[i] = replication.Candidate{Name: d.Server(), Status: st, Err: err}
	}
	return cands
}

// chosenDSN returns the DSN of the replica MostAdvanced chose.
func chosenDSN(replicas []dsn.DSN, chosen replication.Candidate) dsn.DSN {
	for _, d := range replicas {
		if d.Server() == chosen.Name {
			return d
		}
	}
	return dsn.DSN{}
}

// describe says what each candidate had received, and which was chosen.
func describe(cands []replication.Candidate, chosen replication.Candidate) string {
	var parts []string
	for _, c := range cands {
		switch {
		case c.Err != nil:
			parts = append(parts, c.Name+" unreachable")
		case c.Status.Replica != nil:
			parts = append(parts, fmt.Sprintf("%s received %s applied %s", c.Name, c.Status.Replica.ReceivedPos, c.Status.Replica.AppliedPos))
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

// serverDSN turns a storage DSN of the topology into the go-sql-driver
// DSN, with its password, of the administrative user on that server.
func (o *FailoverOptions) serverDSN(d dsn.DSN) (string, error) {
	if d.Scheme != dsn.MySQL {
		return "", fmt.Errorf("storage %s is not MariaDB (mysql:...): it has no replication to fail over", d)
	}
	cfg, err := d.WithUser(o.AdminUser).ServerOnly().MySQLConfig(o.passwords)
	if err != nil {
		return "", err
	}
	return cfg.FormatDSN(), nil
}

// mustServerDSN is serverDSN for a DSN Failover has checked already.
func (o *FailoverOptions) mustServerDSN(d dsn.DSN) string {
	s, _ := o.serverDSN(d)
	return s
}

// source is how replicas reach the server of d.
func (o *FailoverOptions) source(d dsn.DSN) (replication.Source, error) {
	host, port, err := net.SplitHostPort(d.Addr)
	if err != nil {
		return replication.Source{}, fmt.Errorf("storage %s: address %q: %w", d.Server(), d.Addr, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return replication.Source{}, fmt.Errorf("storage %s: port %q: %w", d.Server(), port, err)
	}
	var pw string
	if o.passwords != nil {
		pw, _ = o.passwords.Password(o.ReplUser, d.Addr)
	}
	return replication.Source{Host: host, Port: p, User: o.ReplUser, Password: pw}, nil
}

// ServerDSN returns the go-sql-driver DSN, with its password from
// a.Passwords, of user on the server of the storage DSN d: how the
// failover controller reads a unit's servers as the administrative user,
// the way FailoverStorage does. Errors: d is not MariaDB, or no password.
func (a *Admin) ServerDSN(d dsn.DSN, user string) (string, error) {
	o := FailoverOptions{AdminUser: user, passwords: a.Passwords}
	return o.serverDSN(d)
}
