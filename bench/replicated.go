package bench

import (
	"context"
	"fmt"
	"path/filepath"

	"tradeunit/replication/localdb"
)

// UseReplicatedSet starts a replicated MariaDB set in DIR/mariadb, on free
// ports — one primary and two replicas, binlog with sync_binlog=1 and
// semi-synchronous acknowledgement, as `tradeunit mariadb up` runs it — and
// makes its primary the storage of every path, whose CPU then counts the
// replicas' too. Stop it with the returned func, after Close.
func (e *Env) UseReplicatedSet(ctx context.Context) (stop func() error, err error) {
	if e.Storage != "mysql" {
		return nil, fmt.Errorf("a replicated set is MySQL storage: want --storage mysql, not %s", e.Storage)
	}
	cfg := localdb.DefaultConfig(filepath.Join(e.Dir, "mariadb"))
	cfg.Instances, cfg.BasePort = 3, 0
	set, err := localdb.Start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	primary, err := set.Primary(ctx)
	if err != nil {
		set.Close()
		return nil, err
	}
	e.MySQL, e.Secrets = primary.AppStorage("").String(), set.SecretsPath()
	e.storagePids = func() []int {
		var pids []int
		for _, in := range set.Instances {
			pids = append(pids, in.Pid())
		}
		return pids
	}
	return set.Close, nil
}
