package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tradeunit"
	"tradeunit/dsn"
	"tradeunit/pki"
	"tradeunit/routing"
)

// TestAdminTrafficCommands runs the operator's commands of a canary roll-out
// and a drain, as an operator types them, against a routing file.
func TestAdminTrafficCommands(t *testing.T) {
	path := filepath.Join(t.TempDir(), "routes.json")
	tbl := &routing.Table{Revision: 1}
	for i, p := range []string{"normal", "normal", "normal", "key"} {
		tbl.Units = append(tbl.Units, routing.Unit{ID: tradeunit.UnitID(i + 1), Partition: p, LogicAddrs: []string{"127.0.0.1:9001"},
			Available: true, AcceptNew: true})
	}
	if err := routing.WriteFile(path, tbl); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		args []string
		want string // part of the output; an error's text if wantErr
		err  bool
	}{
		{[]string{"label", "--unit", "3", "release=v2"}, "unit 3 labels: release=v2", false},
		{[]string{"canary", "--partition", "normal", "--label", "release=v2", "--share", "0.01"}, "none → release=v2 at 1%", false},
		{[]string{"canary", "--partition", "normal", "--label", "release=v2", "--share", "0.05"}, "release=v2 at 1% → release=v2 at 5%\ncanary units: [3]", false},
		{[]string{"canary", "--partition", "normal", "--label", "release=v3", "--share", "0.1"}, "warning: no unit of partition normal carries release=v3", false},
		{[]string{"canary", "--partition", "normal", "--off"}, "canary of partition normal off", false},
		{[]string{"canary", "--partition", "normal", "--label", "release=v2", "--share", "2"}, "between 0 and 1", true},
		{[]string{"blacklist", "--unit", "2", "--reason", "disk swap", "--for", "30m"}, `unit 2 blacklisted: "disk swap" by alice, until`, false},
		{[]string{"blacklist", "--unit", "4", "--reason", "x"}, "last unit of partition key", true},
		{[]string{"unblacklist", "--unit", "2"}, "unit 2 unblacklisted", false},
		{[]string{"unblacklist", "--unit", "2"}, "not blacklisted", true},
		{[]string{"merchant-partition", "--mchid", "1900000002", "--partition", "prerelease"}, `partition "prerelease" has no unit`, true},
		{[]string{"unit-partition", "--unit", "1", "--partition", "prerelease"}, "unit 1: partition prerelease (was normal)", false},
		{[]string{"merchant-partition", "--mchid", "1900000003", "--partition", "prerelease"}, "new orders go to partition prerelease (was normal)", false},
		{[]string{"merchant-partition", "--mchid", "1900000002", "--partition", "key"}, "new orders go to partition key (was normal)", false},
		{[]string{"merchant-partition", "--mchid", "1900000002", "--partition", "vip"}, `partition "vip" has no unit`, true},
		{[]string{"partition-policy", "--partition", "key", "--on-no-unit", "spill", "--spill-to", "normal"}, "spill to normal (was refuse)", false},
		{[]string{"partition-policy", "--partition", "key", "--on-no-unit", "spill"}, "needs a partition to spill to", true},
		{[]string{"nonsense"}, `unknown command "nonsense"`, true},
	}
	operator := operatorFlags(t, pki.RoleAdmin, "alice")
	for _, st := range steps {
		var out, errOut bytes.Buffer
		code := run(context.Background(), append(append([]string{"admin", st.args[0], "--routes", path}, operator...), st.args[1:]...), &out, &errOut)
		got := out.String() + errOut.String()
		if (code != 0) != st.err || !strings.Contains(got, st.want) {
			t.Fatalf("tradeunit admin %s: exit %d, output:\n%s\nwant exit error=%v and %q", strings.Join(st.args, " "), code, got, st.err, st.want)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	final, err := routing.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if final.PartitionOf("1900000002") != "key" || final.PartitionOf("1900000003") != "prerelease" || final.Policy("key").SpillTo != "normal" || len(final.Blacklist) != 0 ||
		final.Policy("normal").Canary != nil {
		t.Fatalf("final table: %s", data)
	}
	if _, err := os.Stat(path + ".history"); err != nil {
		t.Fatalf("no history of the changes: %v", err)
	}
}

// TestAdminFailoverCommands: failover and rejoin name one storage, a
// unit's (--unit) or a directory shard's (--shard), and every refusal says
// which and why, with nothing changed. (Failovers that go through run
// against real MariaDB servers in package e2e, through this command.)
func TestAdminFailoverCommands(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "routes.json")
	tbl := &routing.Table{Revision: 1, Units: []routing.Unit{{ID: 1, LogicAddrs: []string{"127.0.0.1:9001"}, Available: true, AcceptNew: true}}}
	if err := routing.WriteFile(path, tbl); err != nil {
		t.Fatal(err)
	}
	top := &routing.Topology{Revision: 1}
	top.Set(1, routing.Storage{Primary: dsn.MustParse("sqlite:" + filepath.Join(dir, "unit-1.db"))})
	top.SetShard(1, routing.Storage{Primary: dsn.MustParse("sqlite:" + filepath.Join(dir, "directory-1.db"))})
	// Nothing listens on port 1: every server of shard 2 is unreachable.
	top.SetShard(2, routing.Storage{Primary: dsn.MustParse("mysql:u@tcp(127.0.0.1:1)/tradeunit_d2"),
		Replicas: []dsn.DSN{dsn.MustParse("mysql:u@tcp(127.0.0.2:1)/tradeunit_d2")}})
	if err := routing.WriteTopologyFile(routing.TopologyPath(path), top); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		args []string
		want string
	}{
		{[]string{"failover", "--shard", "1"}, "directory shard 1 has no replica to promote"},
		{[]string{"failover", "--unit", "1"}, "unit 1 has no replica to promote"},
		{[]string{"failover", "--shard", "9", "--json"}, "directory shard 9 has no storage in the storage topology"},
		{[]string{"failover"}, "name one storage: --unit N or --shard N"},
		{[]string{"failover", "--unit", "1", "--shard", "1"}, "name one storage: --unit N or --shard N"},
		{[]string{"failover", "--shard", "2"}, "failover of directory shard 2 refused, nothing changed"},
		{[]string{"failover", "--shard", "2"}, "--allow-unreachable-replica"},
		{[]string{"rejoin", "--shard", "1"}, "directory shard 1 has no fenced server"},
		{[]string{"rejoin", "--shard", "2", "--server", "127.0.0.1:1"}, "directory shard 2 has no fenced server 127.0.0.1:1"},
		{[]string{"rejoin"}, "name one storage: --unit N or --shard N"},
	}
	operator := operatorFlags(t, pki.RoleAdmin, "alice")
	for _, st := range steps {
		var out, errOut bytes.Buffer
		code := run(context.Background(), append(append([]string{"admin", st.args[0], "--routes", path}, operator...), st.args[1:]...), &out, &errOut)
		if got := out.String() + errOut.String(); code == 0 || !strings.Contains(got, st.want) {
			t.Errorf("tradeunit admin %s: exit %d, output:\n%s\nwant an error saying %q", strings.Join(st.args, " "), code, got, st.want)
		}
	}
	data, err := os.ReadFile(routing.TopologyPath(path))
	if err != nil {
		t.Fatal(err)
	}
	if after, err := routing.ParseTopology(data); err != nil || after.Revision != 1 {
		t.Errorf("storage topology after the refusals: revision %v (%v), want 1 (unchanged)", after, err)
	}
}
