package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"tradeunit"
)

// ReplicaOptions are the optional settings of a logic-service replica.
type ReplicaOptions struct {
	SequenceBlock  int64         // sequence block size (0: the unit's default)
	ProbeRetention time.Duration // keep probe orders this long (0: the unit's default)
	Metrics        bool          // serve Prometheus metrics on a loopback port
}

// NewReplicaWith returns a logic-service replica of unit over the storage
// dsn, not started.
func NewReplicaWith(binary, dir, name string, unit tradeunit.UnitID, dsn string, o ReplicaOptions) *Replica {
	metricsFile := filepath.Join(dir, "run", name+".metrics-addr")
	return &Replica{Unit: unit, DSN: dsn, Process: NewProcess(binary, dir, name, func(listen, addrFile string) []string {
		args := []string{"unit", "--unit", unit.String(), "--db", dsn, "--listen", listen, "--addr-file", addrFile}
		if o.SequenceBlock > 0 {
			args = append(args, "--sequence-block", fmt.Sprint(o.SequenceBlock))
		}
		if o.ProbeRetention > 0 {
			args = append(args, "--probe-retention", o.ProbeRetention.String())
		}
		if o.Metrics {
			os.Remove(metricsFile)
			args = append(args, "--metrics", "127.0.0.1:0", "--metrics-addr-file", metricsFile)
		}
		return args
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
