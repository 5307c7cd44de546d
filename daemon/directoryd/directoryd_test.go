package directoryd_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"tradeunit"
	"tradeunit/daemon/directoryd"
	"tradeunit/dsn"
	"tradeunit/routing"
	"tradeunit/rpc"
)

// TestArgsRoundTrip: the flags the local cluster starts a shard service
// with parse back to the configuration it meant; a configuration the
// program refuses is refused as flags too.
func TestArgsRoundTrip(t *testing.T) {
	cfg := directoryd.DefaultConfig()
	cfg.Shard, cfg.Routes, cfg.DB = 3, "etcd://127.0.0.1:2379/tradeunit", dsn.MustParse("mysql:app@tcp(10.0.0.1:3306)/tradeunit_d3")
	cfg.Batch.MaxSize, cfg.Batch.MaxWait, cfg.Reconcile.Every, cfg.Metrics = 64, time.Millisecond, 5*time.Second, "127.0.0.1:0"
	args := cfg.Args()
	if args[0] != "directory" {
		t.Fatalf("command %q", args[0])
	}
	got := directoryd.DefaultConfig()
	fs := flag.NewFlagSet("directory", flag.ContinueOnError)
	got.Flags(fs)
	if err := fs.Parse(args[1:]); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, cfg) {
		t.Fatalf("parsed %+v, want %+v (args %v)", got, cfg, args)
	}
	for _, bad := range [][]string{
		{"--routes", "r.json"}, // no shard
		{"--shard", "1"},       // no routing table
		{"--shard", "1", "--routes", "r.json", "--batch-max", "0"},
		{"--shard", "1", "--routes", "r.json", "--reconcile-every", "0s"},
	} {
		m := directoryd.NewMain()
		if err := m.ParseFlags(flag.NewFlagSet("directory", flag.ContinueOnError), bad); err == nil {
			t.Errorf("%s: valid, want refused", strings.Join(bad, " "))
		}
	}
}

// TestServesTheShard: the program serves its shard's entries over gRPC,
// compare-and-swap included, refuses the keys of buckets the routing table
// gives to another shard, and exports its group commit's counts.
func TestServesTheShard(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	routes := filepath.Join(dir, "routes.json")
	// Shard 1 holds the first half of the buckets, shard 2 (elsewhere) the rest.
	table := &routing.Table{Directory: routing.SplitBuckets([]routing.ShardID{1, 2})}
	table.Directory.Shards[0].LogicAddrs, table.Directory.Shards[1].LogicAddrs = []string{"127.0.0.1:1"}, []string{"127.0.0.1:2"}
	if _, err := routing.ReplaceTable(ctx, routes, table, routing.Change{Who: "test", What: "init"}, routing.DefaultOptions()); err != nil {
		t.Fatal(err)
	}
	m := directoryd.NewMain()
	m.Config.Shard, m.Config.Routes, m.Config.DB = 1, routes, dsn.MustParse("sqlite:"+filepath.Join(dir, "d1.db"))
	m.Config.Listen, m.Config.Metrics = "127.0.0.1:0", "127.0.0.1:0"
	m.Config.MetricsAddrFile = filepath.Join(dir, "metrics.addr")
	m.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := m.Run(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })

	pool := rpc.NewPool()
	defer pool.Close()
	c, err := pool.Directory(m.Addr)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	key := tradeunit.MerchantKey{Mchid: "1900000001", Kind: tradeunit.KeyOrder, Value: "served-0001"}
	e := &tradeunit.DirectoryEntry{Key: key, State: tradeunit.EntryPending, Attempt: tradeunit.Attempt{Unit: 1, ID: 9},
		Fingerprint: "f", Version: 1, Created: now, Updated: now}
	if r := c.Put(ctx, []*tradeunit.DirectoryEntry{e}); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	again := c.Put(ctx, []*tradeunit.DirectoryEntry{e})
	if !errors.Is(again[0].Err, tradeunit.ErrVersionConflict) || again[0].Entry == nil || again[0].Entry.Attempt.ID != 9 {
		t.Fatalf("second create of the entry: %+v, want a conflict carrying the stored entry", again[0])
	}
	got, err := c.Entry(ctx, key)
	if err != nil || got.Attempt.ID != 9 || got.Version != 1 {
		t.Fatalf("entry: %+v, %v", got, err)
	}
	absent := key
	for i := 0; absent == key || absent.Bucket() >= tradeunit.DirectoryBuckets/2; i++ {
		absent.Value = fmt.Sprintf("absent-%04d", i)
	}
	if _, err := c.Entry(ctx, absent); !tradeunit.IsCode(err, tradeunit.CodeNotFound) {
		t.Fatalf("absent entry: %v, want RESOURCE_NOT_EXISTS", err)
	}

	// A key of shard 2's buckets is not this shard's to read or write.
	other := key
	for i := 0; other.Bucket() < tradeunit.DirectoryBuckets/2; i++ {
		other.Value = fmt.Sprintf("other-%04d", i)
	}
	if _, err := c.Entry(ctx, other); !tradeunit.IsCode(err, tradeunit.CodeUnitUnavailable) {
		t.Fatalf("read of another shard's key: %v, want UNIT_UNAVAILABLE", err)
	}
	o := e.Clone()
	o.Key = other
	if r := c.Put(ctx, []*tradeunit.DirectoryEntry{o}); !tradeunit.IsCode(r[0].Err, tradeunit.CodeUnitUnavailable) {
		t.Fatalf("write of another shard's key: %v, want UNIT_UNAVAILABLE", r[0].Err)
	}

	addr, err := readAddr(m.Config.MetricsAddrFile)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"tradeunit_directory_puts_total 2", "tradeunit_directory_put_batches_total", "tradeunit_directory_abandoned_backlog"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func readAddr(path string) (string, error) {
	b, err := os.ReadFile(path)
	return strings.TrimSpace(string(b)), err
}
