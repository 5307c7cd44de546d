package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"tradeunit/cluster"
	"tradeunit/daemon"
	"tradeunit/daemon/healthd"
	"tradeunit/daemon/lifecycled"
)

var devCmd = &command{
	name:  "dev",
	usage: "[--data DIR] [--listen ADDR] [--health-listen ADDR] [--units 4] [--replicas 2] [--shards 2] [--routes etcd://HOST:PORT/PREFIX]",
	short: "run a whole local cluster: 4 units and 2 directory shards on SQLite, 2 replicas each, the health checker and the proxy",
	run:   runDev,
}

func runDev(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	bin, err := os.Executable()
	if err != nil {
		return err
	}
	cfg, log := devFlags(fs, bin)
	noEvents := fs.Bool("no-events", false, "run without the event flow (relays, bus, query store): the listing, statistics and bills answer 503")
	if err := noArgs(e, fs, args); err != nil {
		return err
	}
	if *noEvents {
		cfg.Events = nil
	}
	if cfg.Dir, err = filepath.Abs(cfg.Dir); err != nil {
		return err
	}
	if err := log.Validate(); err != nil {
		return err
	}
	cfg.Logger = log.Logger(e.stderr)
	c, err := cluster.Start(ctx, *cfg)
	if err != nil {
		return err
	}
	// tradeunit admin finds the local cluster's routing table through this
	// file, wherever the table lives.
	if err := os.WriteFile(filepath.Join(cfg.Dir, routesSpecFile), []byte(c.RoutesPath+"\n"), 0o644); err != nil {
		c.Close()
		return err
	}
	printWelcome(e.stdout, c)
	<-ctx.Done()
	fmt.Fprintln(e.stdout, "\nstopping: proxy first, then the units (calls in flight finish)...")
	if err := c.Close(); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, "stopped; every order is in", cfg.Dir)
	return nil
}

// devFlags binds the flags of tradeunit dev to the configuration of its
// local cluster: the shipped programs' defaults, on the usual local ports.
func devFlags(fs *flag.FlagSet, bin string) (*cluster.Config, *daemon.LogConfig) {
	cfg := cluster.DefaultConfig("./data", bin)
	health := healthd.DefaultConfig()
	cfg.Proxy.Listen, cfg.Health, cfg.UnitMetrics = "127.0.0.1:8080", &health, true
	log := daemon.DefaultLogConfig()
	cfg.Events = cluster.DefaultEvents()
	cfg.Events.RelaysPerUnit = 1
	cfg.Events.Query.Metrics = "127.0.0.1:0"
	fs.StringVar(&cfg.Events.Bus.URL, "nats-url", cfg.Events.Bus.URL, "event bus (NATS JetStream) the relays publish to; empty: an embedded server, its data in DIR/nats")
	fs.StringVar(&cfg.Events.Query.Store, "query-store", cfg.Events.Query.Store, "query store the listing, statistics and bills are served from: sqlite:PATH or postgres://...; empty: DIR/query.db")
	fs.IntVar(&cfg.Events.RelaysPerUnit, "relays", cfg.Events.RelaysPerUnit, "outbox relays per unit (one publishes; the others take over when it dies)")
	fs.StringVar(&cfg.Dir, "data", cfg.Dir, "directory for the units' SQLite files, logs and the routing table")
	fs.StringVar(&cfg.Proxy.Listen, "listen", cfg.Proxy.Listen, "proxy HTTP listen address")
	fs.IntVar(&cfg.Units, "units", cfg.Units, "number of units")
	fs.IntVar(&cfg.Replicas, "replicas", cfg.Replicas, "logic-service replicas per unit")
	fs.IntVar(&cfg.Shards, "shards", cfg.Shards, "merchant-key directory shards (a restart keeps the previous run's)")
	fs.IntVar(&cfg.ShardReplicas, "shard-replicas", cfg.ShardReplicas, "service replicas per directory shard")
	fs.StringVar(&health.Listen, "health-listen", health.Listen, "health checker HTTP listen address (GET /v1/units, /metrics)")
	fs.DurationVar(&health.Health.Interval, "probe-interval", health.Health.Interval, "time between two health probes of a unit")
	fs.DurationVar(&health.Health.ProbeTimeout, "probe-timeout", health.Health.ProbeTimeout, "bound of each call of a probe")
	fs.StringVar(&cfg.RoutesSpec, "routes", cfg.RoutesSpec, "keep the routing table in etcd (etcd://HOST:PORT/PREFIX) instead of DIR/routes.json")
	fs.BoolVar(&cfg.Proxy.Proxy.AccessLog, "access-log", cfg.Proxy.Proxy.AccessLog, "log one line per API request")
	// The lifecycle controller, with thresholds small enough to watch a
	// unit go hot → warm → cold → retired in a few minutes of load.
	lc := lifecycled.DefaultConfig()
	cfg.Lifecycle = &lc
	l := &lc.Lifecycle
	l.Every, l.MaxOrders, l.MaxBytes, l.MaxAge = 2*time.Second, 2000, 0, 0
	l.CoolBelow, l.CoolWindow, l.CoolAfter = 0.2, 10*time.Second, 30*time.Second
	fs.Int64Var(&l.MaxOrders, "lifecycle-max-orders", l.MaxOrders, "the lifecycle controller warms a unit holding this many orders (it adds a fresh unit first)")
	fs.DurationVar(&l.CoolAfter, "lifecycle-cool-after", l.CoolAfter, "... and moves a warm unit to DIR/cold once quiet (under 0.2 changes/s) this long")
	fs.IntVar(&l.MaxUnits, "lifecycle-max-units", 8, "the lifecycle controller adds no fresh unit beyond this many units")
	fs.BoolVar(&l.Off, "lifecycle-off", l.Off, "the lifecycle controller measures only")
	log.Flags(fs)
	return &cfg, &log
}

func printWelcome(w io.Writer, c *cluster.Cluster) {
	var b strings.Builder
	fmt.Fprintf(&b, "tradeunit dev: %d units, %d directory shards, proxy at %s\n\n", len(c.Units), len(c.Shards), c.ProxyURL)
	for _, u := range c.Units {
		fmt.Fprintf(&b, "  unit %d  %s  logic services %v\n", u.ID, u.DSN, u.Addrs())
	}
	for _, s := range c.Shards {
		fmt.Fprintf(&b, "  directory shard %d  %s  services %v\n", s.ID, s.DSN, s.Addrs())
	}
	fmt.Fprintf(&b, "\nhealth checker: %s/v1/units (every unit's verdict and latency)\n", c.HealthURL)
	if lc := c.Lifecycle; lc != nil {
		l := lc.Config.Lifecycle
		fmt.Fprintf(&b, "lifecycle:      a unit with %d orders is warmed (a fresh one added first, up to %d units), then moved to %s once quiet for %v; watch: tradeunit admin units\n",
			l.MaxOrders, l.MaxUnits, filepath.Join(c.Dir, "cold"), l.CoolAfter)
	}
	fmt.Fprintf(&b, "metrics:        %s/metrics (proxy), %s/metrics (checker), units and shards:", c.ProxyURL, c.HealthURL)
	for _, r := range c.Replicas() {
		if m := r.MetricsURL(); m != "" {
			fmt.Fprintf(&b, " %s", m)
		}
	}
	if c.Query != nil {
		bus := c.Query.Config.Bus.URL
		if c.Bus != nil {
			bus = "embedded NATS " + c.Bus.URL()
		}
		fmt.Fprintf(&b, "\nevents:         unit outbox -> %d relays -> %s -> query store %s\n", len(c.Relays), bus, c.QueryStore)
		fmt.Fprintf(&b, "                listing: GET %s/v3/orders; consumer metrics (lag): %s\n                relay metrics:", c.ProxyURL, c.Query.MetricsURL())
		for _, r := range c.Relays {
			fmt.Fprintf(&b, " %s", r.MetricsURL())
		}
	}
	if f := c.AdminTLS(); f.Enabled() {
		// No curl line here: the one curl line dev prints is the API example.
		fmt.Fprintf(&b, "\ncertificates:   %s (CA %s); internal endpoints (checker, metrics) want a client\n"+
			"                certificate of that CA, e.g. the operator's: --cacert %s --cert %s --key %s\n",
			filepath.Dir(f.Cert), filepath.Dir(f.CA), f.CA, f.Cert, f.Key)
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
