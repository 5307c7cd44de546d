package cluster

import (
	"os"
	"path/filepath"
	"strings"

	"tradeunit"
	"tradeunit/daemon/unitd"
	"tradeunit/dsn"
)

// Replica is one logic-service process of a unit: tradeunit unit, started
// with the flags of its configuration.
type Replica struct {
	*Process
	Unit tradeunit.UnitID
	DSN  dsn.DSN // its one storage; the zero DSN when it follows the topology
}

// NewReplica returns a logic-service replica, not started, running binary
// with cfg (its listen address and address file are the process's); its
// logs go to dir/logs/name.log. With cfg.Metrics set, the replica writes
// its bound metrics address where MetricsURL finds it.
func NewReplica(binary, dir, name string, cfg unitd.Config) *Replica {
	if cfg.Metrics != "" {
		cfg.MetricsAddrFile = filepath.Join(dir, "run", name+".metrics-addr")
	}
	return &Replica{Unit: cfg.Service.Unit, DSN: cfg.DB, Process: NewProcess(binary, dir, name, func(listen, addrFile string) []string {
		c := cfg
		c.Listen, c.AddrFile = listen, addrFile
		if c.MetricsAddrFile != "" {
			os.Remove(c.MetricsAddrFile)
		}
		return c.Args()
	})}
}

// MetricsURL returns the replica's metrics URL, or "" if it serves none. It
// is known once the replica has started (the unit writes it before its
// serving address).
func (r *Replica) MetricsURL() string {
	data, err := os.ReadFile(filepath.Join(r.dir, "run", r.Name+".metrics-addr"))
	if err != nil || !strings.HasSuffix(string(data), "\n") {
		return ""
	}
	return "http://" + strings.TrimSpace(string(data)) + "/metrics"
}
