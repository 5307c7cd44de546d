package proxyd_test

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"tradeunit/daemon/proxyd"
	"tradeunit/proxy"
	"tradeunit/routing"
)

// TestStalledBodyIsCut: a client that announces a body and sends one byte
// of it holds its connection no longer than the read timeout.
func TestStalledBodyIsCut(t *testing.T) {
	routes, err := routing.NewMemoryTable(&routing.Table{Revision: 1})
	if err != nil {
		t.Fatal(err)
	}
	m := proxyd.NewMain()
	m.Config.Listen, m.Config.HTTP.ReadTimeout = "127.0.0.1:0", 300*time.Millisecond
	m.Routes, m.Logger = routes, slog.New(slog.NewTextHandler(io.Discard, nil))
	m.Credentials = &proxy.Credentials{Merchants: []proxy.Merchant{{Mchid: "1900000001", APIKey: "0123456789abcdef"}}}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	conn, err := net.Dial("tcp", strings.TrimPrefix(m.URL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	io.WriteString(conn, "POST /v3/orders HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	io.ReadAll(conn) // until the server closes the connection
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("connection held %v, want it cut after the %v read timeout", d, m.Config.HTTP.ReadTimeout)
	}
}

// TestArgsRoundTrip: the flags Args writes parse back to the same
// configuration, so a child process runs exactly what was asked.
func TestArgsRoundTrip(t *testing.T) {
	cfg := proxyd.DefaultConfig()
	cfg.Routes, cfg.Proxy.MaxCreateAttempts, cfg.Proxy.UnitTimeout, cfg.HTTP.ReadTimeout = "r.json", 5, time.Second, time.Minute
	args := cfg.Args()
	if args[0] != "proxy" {
		t.Fatalf("args %v: want the proxy command first", args)
	}
	got := proxyd.DefaultConfig()
	fs := flag.NewFlagSet("proxy", flag.ContinueOnError)
	got.Flags(fs)
	if err := fs.Parse(args[1:]); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, cfg) {
		t.Fatalf("parsed %+v, want %+v (args %v)", got, cfg, args)
	}
	if len(args) != 5 {
		t.Errorf("args %v: want only the 4 flags that differ from the defaults", args)
	}
}
