package admin_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"tradeunit"
	"tradeunit/admin"
	"tradeunit/dsn"
	"tradeunit/replication"
	"tradeunit/routing"
)

// mysqlOn is the DSN of database db on 127.0.0.1:port. Nothing listens on
// the low ports these tests use: a server there is unreachable at once.
func mysqlOn(port, db string) dsn.DSN {
	return dsn.MustParse("mysql:u@tcp(127.0.0.1:" + port + ")/" + db)
}

// TestFailoverRefusesWhatItCannotFailOver: a unit's or a directory shard's
// storage without replicas, not on MariaDB, unknown, or sharing a server
// with another entry in other roles, is refused before anything is
// touched; so is a rejoin with nothing fenced, or without a primary; and a
// storage with no replica safe to promote is refused with nothing changed,
// naming every entry on its servers. (The failover itself runs against
// real MariaDB servers in package e2e.)
func TestFailoverRefusesWhatItCannotFailOver(t *testing.T) {
	a, _ := newAdmin(t)
	ctx := context.Background()
	if _, err := a.Topology.Update(ctx, routing.Change{}, func(t *routing.Topology) error {
		t.Set(2, routing.Storage{Primary: mysqlOn("1", "tradeunit_u2"), Replicas: []dsn.DSN{sqlite("r.db")}})
		t.SetShard(1, routing.Storage{Primary: sqlite("d1.db")})
		t.SetShard(2, routing.Storage{Primary: mysqlOn("1", "tradeunit_d2"), Replicas: []dsn.DSN{sqlite("r2.db")}})
		// Unit 3 and shard 3 on the same servers in the same roles; shard
		// 4 has a server of theirs as its primary.
		set := func(db string) routing.Storage {
			return routing.Storage{Primary: mysqlOn("2", db), Replicas: []dsn.DSN{mysqlOn("3", db), mysqlOn("4", db)}}
		}
		t.Set(3, set("tradeunit_u3"))
		t.SetShard(3, set("tradeunit_d3"))
		t.SetShard(5, routing.Storage{Primary: mysqlOn("5", "tradeunit_d5"), Replicas: []dsn.DSN{mysqlOn("6", "tradeunit_d5")}})
		t.SetShard(6, routing.Storage{Replicas: []dsn.DSN{mysqlOn("7", "tradeunit_d6")}, Fenced: []dsn.DSN{mysqlOn("8", "tradeunit_d6")}})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	shareServer := func(t *routing.Topology) error {
		t.SetShard(4, routing.Storage{Primary: mysqlOn("3", "tradeunit_d4"), Replicas: []dsn.DSN{mysqlOn("2", "tradeunit_d4")}})
		return nil
	}
	shareFenced := func(t *routing.Topology) error {
		t.SetShard(4, routing.Storage{Primary: mysqlOn("3", "tradeunit_d4"), Fenced: []dsn.DSN{mysqlOn("2", "tradeunit_d4")}})
		return nil
	}
	o := admin.DefaultFailoverOptions()
	unit := func(id tradeunit.UnitID) func() error {
		return func() error { _, err := a.Failover(ctx, id, o); return err }
	}
	shard := func(id routing.ShardID) func() error {
		return func() error { _, err := a.FailoverShard(ctx, id, o); return err }
	}
	tests := []struct {
		name string
		edit func(*routing.Topology) error // applied before the run
		run  func() error
		code tradeunit.Code
		want string
	}{
		{"unit: no replicas", nil, unit(1), tradeunit.CodeParamError, "unit 1 has no replica to promote"},
		{"unit: not MariaDB", nil, unit(2), tradeunit.CodeParamError, "is not MariaDB"},
		{"unit: unknown", nil, unit(9), tradeunit.CodeParamError, "unit 9 has no storage in the storage topology"},
		{"unit: rejoin without fenced servers", nil, func() error { _, err := a.Rejoin(ctx, 2, "", o); return err },
			tradeunit.CodeParamError, "unit 2 has no fenced server"},
		{"shard: no replicas", nil, shard(1), tradeunit.CodeParamError, "directory shard 1 has no replica to promote"},
		{"shard: not MariaDB", nil, shard(2), tradeunit.CodeParamError, "is not MariaDB"},
		{"shard: unknown", nil, shard(9), tradeunit.CodeParamError, "directory shard 9 has no storage in the storage topology"},
		{"shard: rejoin without fenced servers", nil, func() error { _, err := a.RejoinShard(ctx, 5, "", o); return err },
			tradeunit.CodeParamError, "directory shard 5 has no fenced server"},
		{"shard: rejoin while failing over", nil, func() error { _, err := a.RejoinShard(ctx, 6, "", o); return err },
			tradeunit.CodeParamError, "directory shard 6 has no primary to rejoin"},
		{"shard: rejoin of a server it has not fenced", nil, func() error { _, err := a.RejoinShard(ctx, 5, "127.0.0.1:9", o); return err },
			tradeunit.CodeParamError, "directory shard 5 has no fenced server 127.0.0.1:9"},
		{"unit: a shard shares a server in another role", shareServer, unit(3), tradeunit.CodeParamError,
			"directory shard 4 shares server 127.0.0.1:2 with unit 3, in other roles"},
		{"shard: a shard shares a server in another role", shareServer, shard(3), tradeunit.CodeParamError,
			"directory shard 4 shares server 127.0.0.1:2 with directory shard 3, in other roles"},
		{"shard: rejoin, a unit shares a server in another role", shareFenced,
			func() error { _, err := a.RejoinShard(ctx, 4, "", o); return err }, tradeunit.CodeParamError,
			"unit 3 shares server 127.0.0.1:3 with directory shard 4, in other roles"},
		{"shard: no safe replica, with the unit on its servers", nil, shard(3), tradeunit.CodeInvalidRequest,
			"failover of directory shard 3 and unit 3 refused, nothing changed"},
		{"unit: no safe replica, with the shard on its servers", nil, unit(3), tradeunit.CodeInvalidRequest,
			"failover of unit 3 and directory shard 3 refused, nothing changed"},
		{"shard: every replica unreachable", nil, shard(5), tradeunit.CodeInvalidRequest,
			"failover of directory shard 5 refused, nothing changed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.edit != nil {
				saved := a.Topology.Current().Clone()
				if _, err := a.Topology.Update(ctx, routing.Change{}, tt.edit); err != nil {
					t.Fatal(err)
				}
				defer func() {
					if _, err := a.Topology.Update(ctx, routing.Change{}, func(t *routing.Topology) error {
						t.Shards = saved.Shards
						return nil
					}); err != nil {
						t.Fatal(err)
					}
				}()
			}
			rev := a.Topology.Current().Revision
			err := tt.run()
			if !tradeunit.IsCode(err, tt.code) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want a %s saying %q", err, tt.code, tt.want)
			}
			if tt.code == tradeunit.CodeInvalidRequest && !errors.Is(err, replication.ErrNoSafeReplica) {
				t.Errorf("got %v, want it to wrap ErrNoSafeReplica", err)
			}
			if got := a.Topology.Current().Revision; got != rev {
				t.Errorf("storage topology revision: got %d, want %d (unchanged)", got, rev)
			}
		})
	}
}
