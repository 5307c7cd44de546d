package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"

	"tradeunit"
	"tradeunit/daemon/proxyd"
	"tradeunit/dsn"
	"tradeunit/proxy"
	"tradeunit/routing"
	"tradeunit/rpc"
	"tradeunit/store/sqlstore"
	"tradeunit/unit"
)

// BenchmarkCreateStack runs the whole create path in one process — HTTP
// client, proxy, gRPC, logic service, SQLite — over loopback sockets, so that
// one CPU profile shows every layer's cost:
//
//	go test -run='^$' -bench=CreateStack -cpuprofile=/tmp/cpu.out ./bench/
func BenchmarkCreateStack(b *testing.B) {
	dir := b.TempDir()
	store, err := sqlstore.Open(context.Background(), dsn.MustParse("sqlite:"+filepath.Join(dir, "unit.db")), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	svc, err := unit.New(unit.DefaultConfig(1), store)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	server, _ := rpc.NewServer(svc, quiet)
	go server.Serve(ln)
	defer server.Stop()

	routes, err := routing.NewMemoryTable(&routing.Table{Revision: 1, Units: []routing.Unit{{ID: 1,
		LogicAddrs: []string{ln.Addr().String()}, Available: true, AcceptNew: true}}})
	if err != nil {
		b.Fatal(err)
	}
	px := proxyd.NewMain()
	px.Config.Listen = "127.0.0.1:0"
	// The proxy and unit layers alone: the directory's cost is measured
	// with its shard process by tradeunit bench directory.
	px.Config.Proxy.UnsafeWithoutDirectory = true
	px.Routes, px.Logger = routes, quiet
	px.Credentials = &proxy.Credentials{Merchants: []proxy.Merchant{{Mchid: Mchid, APIKey: apiKey}}}
	if err := px.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer px.Close()

	target := newHTTPTarget(px.URL(), apiKey, 64)
	var n atomic.Int64
	b.SetParallelism(8) // 16 callers on 2 cores
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := target.Create(context.Background(), fmt.Sprintf("stack-%d", n.Add(1)), 100); err != nil {
				b.Error(tradeunit.ErrorCode(err), err)
				return
			}
		}
	})
}
