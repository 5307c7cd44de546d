package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"tradeunit"
	"tradeunit/dsn"
	"tradeunit/pki"
	"tradeunit/routing"
)

// TestAdminStandbyAndZoneCommands runs the standby and zone commands as an
// operator types them, and reads what units shows of them.
func TestAdminStandbyAndZoneCommands(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "routes.json")
	tbl, top := &routing.Table{Revision: 1}, &routing.Topology{Revision: 1}
	db := filepath.Join(dir, "unit-2.db")
	for i, p := range []string{"normal", "key"} {
		id := tradeunit.UnitID(i + 1)
		tbl.Units = append(tbl.Units, routing.Unit{ID: id, Partition: p, LogicAddrs: []string{"127.0.0.1:9001", "127.0.0.1:9002"},
			Available: true, AcceptNew: true})
		top.Set(id, routing.Storage{Primary: dsn.MustParse("sqlite:" + filepath.Join(dir, "unit-"+id.String()+".db"))})
	}
	if err := routing.WriteFile(path, tbl); err != nil {
		t.Fatal(err)
	}
	if err := routing.WriteTopologyFile(routing.TopologyPath(path), top); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		args []string
		want []string // parts of the output; an error's text if err
		err  bool
	}{
		{[]string{"unit", "set", "--unit", "2", "--standby", "true"}, []string{"unit 2: partition key", "standby true"}, false},
		{[]string{"unit", "set", "--unit", "2", "--standby", "maybe"}, []string{"--standby \"maybe\": want true or false"}, true},
		{[]string{"unit", "set", "--unit", "1", "--logic-zone", "127.0.0.1:9001=room-a", "--logic-zone", "127.0.0.1:9002=room-b"},
			[]string{"logic 127.0.0.1:9001(room-a),127.0.0.1:9002(room-b)"}, false},
		{[]string{"unit", "set", "--unit", "2", "--logic-zone", "127.0.0.1:9001=room-a", "--logic-zone", "127.0.0.1:9002=room-a"},
			[]string{"127.0.0.1:9002(room-a)"}, false},
		{[]string{"unit", "set", "--unit", "2", "--logic-zone", "127.0.0.1:9999=room-a"}, []string{"not one of the unit's logic_addrs"}, true},
		{[]string{"unit", "set", "--unit", "2", "--logic-zone", "127.0.0.1:9001=Room A"}, []string{`zone "Room A" must match`}, true},
		{[]string{"unit", "set", "--unit", "2", "--storage-zone", db + "=room-a"}, []string{"storage zones set"}, false},
		{[]string{"unit", "set", "--unit", "2", "--storage-zone", "/elsewhere.db=room-a"}, []string{"not the server of"}, true},
		{[]string{"units", "--health", ""}, []string{"STANDBY", "LOGIC (ZONE)", "127.0.0.1:9001(room-a),127.0.0.1:9002(room-a)", db + "=room-a",
			"warning: unit 2: every logic replica (2) is in zone room-a", "warning: unit 2: its storage primary and every replica are in zone room-a"}, false},
		{[]string{"units", "--storage"}, []string{"ZONE", db + "  room-a", "warning: unit 2: its storage primary"}, false},
		{[]string{"zone", "evacuate", "--zone", "room-a", "--dry-run"},
			[]string{"evacuation of zone room-a", "REFUSED: unit 2: its primary " + db + " is in zone room-a and no replica", "warning: unit 2 has every logic replica in zone room-a"}, true},
		{[]string{"zone", "evacuate", "--zone", "room-a"}, []string{"refused, nothing changed"}, true},
		{[]string{"zone", "evacuate", "--zone", "room-b", "--dry-run"}, []string{"no storage primary is in the zone", "units [1]"}, false},
		{[]string{"zone", "evacuate", "--zone", "room-b"}, []string{"zone room-b evacuated: routing table revision"}, false},
		{[]string{"units", "--health", ""}, []string{"evacuated zones: room-b"}, false},
		{[]string{"zone", "restore", "--zone", "room-b"}, []string{"zone room-b restored"}, false},
		{[]string{"zone", "restore", "--zone", "room-b"}, []string{`zone "room-b" is not evacuated`}, true},
		{[]string{"zone", "evacuate", "--zone", "nowhere", "--dry-run"}, []string{"no logic replica or storage server is in zone nowhere"}, true},
		{[]string{"zone", "evacuate"}, []string{"name the zone: --zone Z"}, true},
	}
	operator := operatorFlags(t, pki.RoleAdmin, "alice")
	for _, st := range steps {
		var out, errOut bytes.Buffer
		args := append([]string{"admin"}, st.args[0])
		if st.args[0] == "unit" || st.args[0] == "zone" {
			args = append(args, st.args[1])
			st.args = st.args[1:]
		}
		code := run(context.Background(), append(append(append(args, "--routes", path), operator...), st.args[1:]...), &out, &errOut)
		got := out.String() + errOut.String()
		ok := (code != 0) == st.err
		for _, w := range st.want {
			ok = ok && strings.Contains(got, w)
		}
		if !ok {
			t.Fatalf("tradeunit admin %s: exit %d, output:\n%s\nwant exit error=%v and %q", strings.Join(st.args, " "), code, got, st.err, st.want)
		}
	}
	if strings.Contains(runOut(t, path, operator, "units", "--health", ""), "warning: unit 1") {
		t.Fatal("unit 1, spread over two zones, is warned of")
	}
}

func runOut(t *testing.T, path string, operator []string, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := run(context.Background(), append(append([]string{"admin", args[0], "--routes", path}, operator...), args[1:]...), &out, &errOut); code != 0 {
		t.Fatalf("tradeunit admin %s: exit %d\n%s%s", strings.Join(args, " "), code, &out, &errOut)
	}
	return out.String()
}
