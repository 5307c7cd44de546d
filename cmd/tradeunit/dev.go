package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"tradeunit/cluster"
)

var devCmd = &command{
	name:  "dev",
	usage: "[--data DIR] [--listen ADDR] [--health-listen ADDR] [--routes etcd://HOST:PORT/PREFIX]",
	short: "run a whole local cluster: 4 units on SQLite, 2 logic-service replicas each, the health checker and the proxy",
}

func init() { devCmd.run = runDev }

func runDev(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags(devCmd)
	dir := fs.String("data", "./data", "directory for the units' SQLite files, logs and the routing table")
	listen := fs.String("listen", "127.0.0.1:8080", "proxy HTTP listen address")
	units := fs.Int("units", 4, "number of units")
	replicas := fs.Int("replicas", 2, "logic-service replicas per unit")
	healthListen := fs.String("health-listen", "127.0.0.1:8081", "health checker HTTP listen address (GET /v1/units, /metrics)")
	interval := fs.Duration("probe-interval", time.Second, "time between two health probes of a unit")
	routes := fs.String("routes", "", "keep the routing table in etcd (etcd://HOST:PORT/PREFIX) instead of DIR/routes.json")
	logger := logLevelFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	bin, err := os.Executable()
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	c, err := cluster.Start(ctx, cluster.Config{Dir: abs, Binary: bin, Units: *units, Replicas: *replicas,
		ProxyAddr: *listen, Health: &cluster.HealthConfig{Addr: *healthListen, Interval: *interval},
		UnitMetrics: true, RoutesSpec: *routes, Logger: logger()})
	if err != nil {
		return err
	}
	// tradeunit admin finds the local cluster's routing table through this
	// file, wherever the table lives.
	if err := os.WriteFile(filepath.Join(abs, routesSpecFile), []byte(c.RoutesPath+"\n"), 0o644); err != nil {
		c.Close()
		return err
	}
	printWelcome(stdout, c)
	<-ctx.Done()
	fmt.Fprintln(stdout, "\nstopping: proxy first, then the units (calls in flight finish)...")
	if err := c.Close(); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "stopped; every order is in", abs)
	return nil
}

func printWelcome(w io.Writer, c *cluster.Cluster) {
	var b strings.Builder
	fmt.Fprintf(&b, "tradeunit dev: %d units, proxy at %s\n\n", len(c.Units), c.ProxyURL)
	for _, u := range c.Units {
		fmt.Fprintf(&b, "  unit %d  %s  logic services %v\n", u.ID, u.DSN, u.Addrs())
	}
	fmt.Fprintf(&b, "\nhealth checker: %s/v1/units (every unit's verdict and latency)\n", c.HealthURL)
	fmt.Fprintf(&b, "metrics:        %s/metrics (proxy), %s/metrics (checker), units:", c.ProxyURL, c.HealthURL)
	for _, u := range c.Units {
		for _, r := range u.Replicas {
			if m := r.MetricsURL(); m != "" {
				fmt.Fprintf(&b, " %s", m)
			}
		}
	}
	fmt.Fprintf(&b, "\nrouting table:  %s (tradeunit admin ... --routes %s)\nlogs:           %s\n\nmerchants (also in %s):\n",
		c.RoutesPath, c.RoutesPath, filepath.Join(c.Dir, "logs"), filepath.Join(c.Dir, "dev-credentials.json"))
	for _, m := range c.Credentials.Merchants {
		fmt.Fprintf(&b, "  mchid %s  api_key %s\n", m.Mchid, m.APIKey)
	}
	key := c.Credentials.Merchants[0].APIKey
	fmt.Fprintf(&b, "\ntry it:\n  curl -s -X POST %s/v3/orders -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' \\\n"+
		"    -d '{\"out_trade_no\":\"demo-0001\",\"description\":\"coffee\",\"amount\":{\"total\":100,\"currency\":\"CNY\"}}'\n",
		c.ProxyURL, key)
	fmt.Fprintln(&b, "\nCtrl-C stops the cluster; run it again on the same --data to find every order still there.")
	io.WriteString(w, b.String())
}
