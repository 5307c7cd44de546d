package admin

import (
	"fmt"
	"slices"
	"strings"

	"tradeunit/dsn"
	"tradeunit/routing"
)

// Several entries of the storage topology may keep their databases on the
// same servers: a unit and a directory shard on one replicated MariaDB set,
// say. Everything a failover does to a server it does to all of them at
// once: read_only fences the whole server, a replica receives and applies
// every database, promotion makes the whole server writable. So the entries
// on the same servers fail over and rejoin together, in the same topology
// changes: one left mapped to a fenced primary could take no change, and a
// later failover of it alone would promote another replica and leave two
// writable primaries.

// servers is a storage entry's servers (host:port) in their roles, whatever
// the databases on them.
type servers struct {
	primary          string
	replicas, fenced []string // sorted
}

func serversOf(s routing.Storage) servers {
	names := func(ds []dsn.DSN) []string {
		out := make([]string, len(ds))
		for i, d := range ds {
			out[i] = d.Server()
		}
		slices.Sort(out)
		return out
	}
	return servers{primary: s.Primary.Server(), replicas: names(s.Replicas), fenced: names(s.Fenced)}
}

func (s servers) equal(o servers) bool {
	return s.primary == o.primary && slices.Equal(s.replicas, o.replicas) && slices.Equal(s.fenced, o.fenced)
}

// all returns every server of s.
func (s servers) all() []string {
	out := slices.Concat(s.replicas, s.fenced)
	if s.primary != "" {
		out = append(out, s.primary)
	}
	return out
}

// String lists the servers by role, for messages.
func (s servers) String() string {
	p := s.primary
	if p == "" {
		p = "none"
	}
	return fmt.Sprintf("primary %s, replicas [%s], fenced [%s]", p, strings.Join(s.replicas, " "), strings.Join(s.fenced, " "))
}

// colocated returns the entries of t other than ref on the same servers as
// s (ref's storage) in the same roles. An entry that shares a server with
// s in another role cannot be failed over with it, nor left alone: that is
// a PARAM_ERROR, and the topology must be mended first.
func colocated(t *routing.Topology, ref routing.StorageRef, s routing.Storage) ([]routing.StorageRef, error) {
	mine := serversOf(s)
	var out []routing.StorageRef
	for _, r := range t.Refs() {
		e, ok := t.Entry(r)
		if r == ref || !ok {
			continue
		}
		theirs := serversOf(*e)
		if theirs.equal(mine) {
			out = append(out, r)
			continue
		}
		for _, srv := range theirs.all() {
			if slices.Contains(mine.all(), srv) {
				return nil, paramErrorf("%s shares server %s with %s, in other roles (%s; %s has %s): "+
					"entries on the same servers fail over together, so list their servers alike first", r, srv, ref, theirs, ref, mine)
			}
		}
	}
	return out, nil
}

// names lists entries for messages: "directory shard 1", "directory shard
// 1 and unit 3".
func names(refs []routing.StorageRef) string {
	s := make([]string, len(refs))
	for i, r := range refs {
		s[i] = r.String()
	}
	if len(s) <= 1 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

// takes is the verb of names(refs): " takes" or " take".
func takes(refs []routing.StorageRef) string {
	if len(refs) == 1 {
		return " takes"
	}
	return " take"
}

// onServer returns the index of the DSN in ds on server srv, or -1.
func onServer(ds []dsn.DSN, srv string) int {
	return slices.IndexFunc(ds, func(d dsn.DSN) bool { return d.Server() == srv })
}
