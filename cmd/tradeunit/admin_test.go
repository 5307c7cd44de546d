package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tradeunit"
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
		{[]string{"blacklist", "--unit", "2", "--reason", "disk swap", "--for", "30m", "--who", "alice"}, `unit 2 blacklisted: "disk swap" by alice, until`, false},
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
	for _, st := range steps {
		var out, errOut bytes.Buffer
		code := run(context.Background(), append([]string{"admin", st.args[0], "--routes", path}, st.args[1:]...), &out, &errOut)
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
