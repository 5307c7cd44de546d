package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"

	"tradeunit"
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
	store, err := sqlstore.Open(context.Background(), "sqlite:"+filepath.Join(dir, "unit.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	svc, err := unit.New(unit.Config{Unit: 1}, store)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	server, _ := rpc.NewServer(svc)
	go server.Serve(ln)
	defer server.Stop()

	routes := filepath.Join(dir, "routes.json")
	t := &routing.Table{Revision: 1, Units: []routing.Unit{{ID: 1, LogicAddrs: []string{ln.Addr().String()},
		Storage: routing.Storage{Primary: "sqlite:x"}, Available: true, AcceptNew: true}}}
	if err := routing.WriteFile(routes, t); err != nil {
		b.Fatal(err)
	}
	src, err := routing.OpenFile(routes, routing.FileOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	p, err := proxy.New(proxy.Config{Routes: src, Dialer: rpc.NewPool(), Logger: quiet,
		Credentials: &proxy.Credentials{Merchants: []proxy.Merchant{{Mchid: Mchid, APIKey: apiKey}}}})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	hln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	hs := &http.Server{Handler: p.Handler()}
	go hs.Serve(hln)
	defer hs.Close()

	target := newHTTPTarget("http://"+hln.Addr().String(), apiKey, 64)
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
