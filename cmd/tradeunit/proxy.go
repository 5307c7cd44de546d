package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"tradeunit/proxy"
	"tradeunit/routing"
	"tradeunit/rpc"
)

var proxyCmd = &command{
	name:  "proxy",
	usage: "--routes FILE --merchants FILE [--listen ADDR] [--health URL]",
	short: "run the stateless proxy: the public REST API, routing to the units of the routing table",
}

func init() { proxyCmd.run = runProxy }

func runProxy(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags(proxyCmd)
	routesPath := fs.String("routes", "", "routing table file (JSON); reloaded when it changes")
	merchants := fs.String("merchants", "", `merchants file: {"merchants":[{"mchid","api_key"}]}`)
	listen := fs.String("listen", "127.0.0.1:8080", "HTTP listen address")
	addrFile := fs.String("addr-file", "", "write the bound address to this file once serving (for port 0)")
	attempts := fs.Int("create-attempts", 3, "units one create may try before giving up")
	timeout := fs.Duration("unit-timeout", 3*time.Second, "timeout of one call to one logic-service replica")
	healthURL := fs.String("health", "", "health checker to follow, e.g. http://127.0.0.1:8081; without it the proxy relies on its own view of the units")
	logger := logLevelFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := logger()
	if *routesPath == "" || *merchants == "" {
		return errors.New("--routes and --merchants are required")
	}
	creds, err := proxy.LoadCredentials(*merchants)
	if err != nil {
		return err
	}
	routes, err := routing.Open(ctx, *routesPath, routing.FileOptions{Logger: log})
	if err != nil {
		return err
	}
	defer routes.Close()
	reg := newRegistry()
	registerRoutesMetrics(reg, routes)
	p, err := proxy.New(proxy.Config{Routes: routes, Dialer: rpc.NewPool(), Credentials: creds, MaxCreateAttempts: *attempts,
		UnitTimeout: *timeout, Health: *healthURL, Registry: reg, Logger: log})
	if err != nil {
		return err
	}
	defer p.Close()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	server := &http.Server{Handler: p.Handler(), ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- server.Serve(ln) }()
	fmt.Fprintf(stdout, "proxy listening on http://%s\n", ln.Addr())
	if *addrFile != "" {
		if err := writeAddrFile(*addrFile, ln.Addr().String()); err != nil {
			server.Close()
			return err
		}
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return server.Shutdown(sctx)
}
