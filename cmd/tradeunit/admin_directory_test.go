package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"tradeunit/pki"

	"tradeunit"
	"tradeunit/admin"
	"tradeunit/dsn"
	"tradeunit/routing"
	"tradeunit/store/dirstore"
)

// TestAdminDirectoryCommands lists a directory's shards and moves buckets
// between them, as an operator types the commands, against a routing file
// whose shards' storage are SQLite files.
func TestAdminDirectoryCommands(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "routes.json")
	tbl := &routing.Table{Revision: 1, Units: []routing.Unit{{ID: 1, LogicAddrs: []string{"127.0.0.1:9001"}, Available: true, AcceptNew: true}},
		Directory: routing.SplitBuckets([]routing.ShardID{1, 2})}
	top := &routing.Topology{Revision: 1}
	top.Set(1, routing.Storage{Primary: dsn.MustParse("sqlite:" + filepath.Join(dir, "unit-1.db"))})
	var inRange int
	for i := range tbl.Directory.Shards {
		s := &tbl.Directory.Shards[i]
		s.LogicAddrs = []string{fmt.Sprintf("127.0.0.1:%d", 9100+s.Shard)}
		d := dsn.MustParse("sqlite:" + filepath.Join(dir, fmt.Sprintf("directory-%d.db", s.Shard)))
		top.SetShard(s.Shard, routing.Storage{Primary: d})
		store, err := dirstore.Open(ctx, d, nil)
		if err != nil {
			t.Fatal(err)
		}
		if s.Shard == 1 {
			for n := 0; inRange < 3; n++ {
				k := tradeunit.MerchantKey{Mchid: "1900000001", Kind: tradeunit.KeyOrder, Value: fmt.Sprintf("cli-%06d", n)}
				if k.Bucket() > 15 {
					continue
				}
				now := time.Now().UTC()
				e := &tradeunit.DirectoryEntry{Key: k, State: tradeunit.EntryCommitted, Attempt: tradeunit.Attempt{Unit: 1, ID: 5},
					RecordNo: "1000010000000000000000000011", Created: now, Updated: now, Version: 1}
				if r := store.Put(ctx, []*tradeunit.DirectoryEntry{e}); r[0].Err != nil {
					t.Fatal(r[0].Err)
				}
				inRange++
			}
		}
		store.Close()
	}
	if err := routing.WriteFile(path, tbl); err != nil {
		t.Fatal(err)
	}
	if err := routing.WriteTopologyFile(routing.TopologyPath(path), top); err != nil {
		t.Fatal(err)
	}
	cli := func(args ...string) (string, int) {
		var out, errOut bytes.Buffer
		code := run(ctx, append(append([]string{"admin", "directory", args[0], "--routes", path}, operatorFlags(t, pki.RoleAdmin, "alice")...), args[1:]...), &out, &errOut)
		return out.String() + errOut.String(), code
	}
	steps := []struct {
		args []string
		want string // part of the output
		code int
	}{
		{[]string{"shards", "--count"}, "1      0-2047     2048   -       yes        3", 0},
		{[]string{"move", "--buckets", "0-15", "--to", "2", "--settle", "1ms"}, "buckets 0-15 moved from shard 1 to shard 2", 0},
		{[]string{"move", "--buckets", "0-15", "--to", "2"}, "buckets 0-15 are on shard 2; 0 leftover copies deleted", 0},
		{[]string{"shards", "--count"}, "2      0-15,2048-4095  2064   -       yes        3", 0},
		{[]string{"move", "--buckets", "2040-2050", "--to", "1"}, "span shards 1 and 2", 1},
		{[]string{"move", "--buckets", "15-0", "--to", "1"}, "--buckets", 2},
		{[]string{"move", "--buckets", "16-31", "--to", "2", "--abort"}, "were not frozen; 0 copies deleted from shard 2", 0},
		{[]string{"move", "--buckets", "0-15"}, "want --buckets FROM-TO and --to SHARD", 2},
	}
	for _, st := range steps {
		got, code := cli(st.args...)
		if code != st.code || !strings.Contains(got, st.want) {
			t.Fatalf("tradeunit admin directory %s: exit %d, output:\n%s\nwant exit %d and %q", strings.Join(st.args, " "), code, got, st.code, st.want)
		}
	}
	out, code := cli("shards", "--json")
	var views []admin.ShardView
	if err := json.Unmarshal([]byte(out), &views); code != 0 || err != nil || len(views) != 2 || admin.FormatRanges(views[1].Buckets) != "0-15,2048-4095" {
		t.Fatalf("shards --json: exit %d, %v:\n%s", code, err, out)
	}
	out, code = cli("move", "--buckets", "0-15", "--to", "1", "--settle", "1ms", "--json")
	var res admin.MoveResult
	if err := json.Unmarshal([]byte(out), &res); code != 0 || err != nil || res.From != 2 || res.To != 1 || res.Copied != int64(inRange) || len(res.Steps) != 7 {
		t.Fatalf("move --json: exit %d, %v:\n%s", code, err, out)
	}
}
