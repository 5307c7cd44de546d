package admin

import (
	"context"
	"fmt"
	"slices"

	"tradeunit"
	"tradeunit/dsn"
	"tradeunit/replication"
	"tradeunit/routing"
)

// Rejoin brings back the servers a failover fenced in unit id's storage:
// RejoinStorage of its entry.
func (a *Admin) Rejoin(ctx context.Context, id tradeunit.UnitID, server string, o FailoverOptions) (*routing.Topology, error) {
	return a.RejoinStorage(ctx, routing.UnitRef(id), server, o)
}

// RejoinShard brings back the servers a failover fenced in directory shard
// id's storage: RejoinStorage of its entry.
func (a *Admin) RejoinShard(ctx context.Context, id routing.ShardID, server string, o FailoverOptions) (*routing.Topology, error) {
	return a.RejoinStorage(ctx, routing.ShardRef(id), server, o)
}

// RejoinStorage brings back the servers a failover fenced in entry ref (a
// unit's or a directory shard's storage) as replicas of its primary
// (replication.Rejoin): each must run again, read-only, and after a crash
// started as a replica (init_rpl_role=SLAVE), so that crash recovery
// truncated the transactions it held unacknowledged. One that still holds
// transactions the primary lacks (errant GTIDs) is refused: it must be
// rebuilt from the primary first (its data replaced by a copy). Each
// server that rejoins moves from the entry's fenced list to its replicas,
// for eventual reads and failover, and so it does in the other entries on
// the same servers (see colocated): a server replicates all of its
// databases. server selects one fenced server by address (host:port); ""
// rejoins them all. Errors: PARAM_ERROR for an entry without a primary or
// without such a fenced server, or sharing servers in other roles; an
// error wrapping replication.ErrErrantGTIDs for a server that must be
// rebuilt.
func (a *Admin) RejoinStorage(ctx context.Context, ref routing.StorageRef, server string, o FailoverOptions) (*routing.Topology, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	o.passwords = a.Passwords
	st, top, err := a.entryOf(ref)
	if err != nil {
		return nil, err
	}
	if !st.HasPrimary() {
		return nil, paramErrorf("%s has no primary to rejoin (failing over: run the failover again)", ref)
	}
	var todo []dsn.DSN
	for _, d := range st.Fenced {
		if server == "" || d.Server() == server {
			todo = append(todo, d)
		}
	}
	if len(todo) == 0 {
		return nil, paramErrorf("%s has no fenced server %s", ref, server)
	}
	primaryAdmin, err := o.serverDSN(st.Primary)
	if err != nil {
		return nil, paramErrorf("%s: %v", ref, err)
	}
	src, err := o.source(st.Primary)
	if err != nil {
		return nil, err
	}
	col, err := colocated(top, ref, st)
	if err != nil {
		return nil, err
	}
	group := append([]routing.StorageRef{ref}, col...)
	what := names(group)
	var t *routing.Topology
	for _, d := range todo {
		admin, err := o.serverDSN(d)
		if err != nil {
			return t, paramErrorf("%s: %v", ref, err)
		}
		if err := replication.Rejoin(ctx, admin, primaryAdmin, src); err != nil {
			return t, fmt.Errorf("rejoin %s to %s: %w", d.Server(), what, err)
		}
		t, err = a.updateStorage(ctx, fmt.Sprintf("rejoin %s: replica %s", what, d.Server()), func(t *routing.Topology) error {
			for _, r := range group {
				e, ok := t.Entry(r)
				i := -1
				if ok {
					i = onServer(e.Fenced, d.Server())
				}
				if !ok || e.Primary.Server() != st.Primary.Server() || i < 0 {
					return paramErrorf("%s: its storage changed meanwhile", r)
				}
				e.Replicas = append(e.Replicas, e.Fenced[i])
				e.Fenced = slices.Delete(e.Fenced, i, i+1)
			}
			return nil
		})
		if err != nil {
			return t, fmt.Errorf("rejoin %s to %s: it replicates, but the storage topology could not list it: %w", d.Server(), what, err)
		}
	}
	return t, nil
}
