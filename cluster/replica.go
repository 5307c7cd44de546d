package cluster

import (
	"os"
	"path/filepath"
	"strings"
	"tradeunit/pki"

	"tradeunit"
	"tradeunit/daemon/directoryd"
	"tradeunit/daemon/unitd"
	"tradeunit/dsn"
	"tradeunit/routing"
)

// Replica is one service process of a unit (tradeunit unit) or of a
// directory shard (tradeunit directory), started with the flags of its
// configuration.
type Replica struct {
	*Process
	Unit  tradeunit.UnitID // 0 for a shard's
	Shard routing.ShardID  // 0 for a unit's
	DSN   dsn.DSN          // its one storage; the zero DSN when it follows the topology
	// scheme of its metrics URL: https when it has a certificate.
	scheme string
}

// schemeOf is the scheme of the internal endpoints of a program with
// files: https (mutual TLS) when it has a certificate.
func schemeOf(files pki.Files) string {
	if files.Enabled() {
		return "https"
	}
	return "http"
}

// NewReplica returns a logic-service replica, not started, running binary
// with cfg (its listen address and address file are the process's); its
// logs go to dir/logs/name.log. With cfg.Metrics set, the replica writes
// its bound metrics address where MetricsURL finds it.
func NewReplica(binary, dir, name string, cfg unitd.Config) *Replica {
	if cfg.Metrics != "" {
		cfg.MetricsAddrFile = metricsAddrFile(dir, name)
	}
	return &Replica{Unit: cfg.Service.Unit, DSN: cfg.DB, scheme: schemeOf(cfg.TLS), Process: NewProcess(binary, dir, name, func(listen, addrFile string) []string {
		c := cfg
		c.Listen, c.AddrFile = listen, addrFile
		removeMetricsAddr(c.MetricsAddrFile)
		return c.Args()
	})}
}

// NewShardReplica is NewReplica for a directory shard's service.
func NewShardReplica(binary, dir, name string, cfg directoryd.Config) *Replica {
	if cfg.Metrics != "" {
		cfg.MetricsAddrFile = metricsAddrFile(dir, name)
	}
	return &Replica{Shard: cfg.Shard, DSN: cfg.DB, scheme: schemeOf(cfg.TLS), Process: NewProcess(binary, dir, name, func(listen, addrFile string) []string {
		c := cfg
		c.Listen, c.AddrFile = listen, addrFile
		removeMetricsAddr(c.MetricsAddrFile)
		return c.Args()
	})}
}

func metricsAddrFile(dir, name string) string { return filepath.Join(dir, "run", name+".metrics-addr") }

func removeMetricsAddr(path string) {
	if path != "" {
		os.Remove(path)
	}
}

// MetricsURL returns the replica's metrics URL, or "" if it serves none. It
// is known once the replica has started (it writes it before its serving
// address).
func (r *Replica) MetricsURL() string {
	data, err := os.ReadFile(metricsAddrFile(r.dir, r.Name))
	if err != nil || !strings.HasSuffix(string(data), "\n") {
		return ""
	}
	return r.scheme + "://" + strings.TrimSpace(string(data)) + "/metrics"
}
