package routing

import (
	"context"
	"strings"
	"time"
)

// Editor is a routing table that operators change: a Source plus safe
// updates and a record of who changed what. Both backends, the file and
// etcd, implement it, so proxies, units, the health checker and the admin
// commands work against either.
type Editor interface {
	Source
	// Update applies fn to a copy of the current table and publishes the
	// result as the next revision, recording change. It is a
	// compare-and-swap: if another editor changed the table in between, fn
	// is applied again to the newer table (a few times at most, then the
	// update fails with ErrConflict), so no change is ever lost. If fn or
	// validation fails nothing is written.
	Update(ctx context.Context, change Change, fn func(*Table) error) (*Table, error)
	// History returns the latest changes, newest first.
	History(ctx context.Context, limit int) ([]Change, error)
}

// Change describes one update of the routing table.
type Change struct {
	Revision int64     `json:"revision"` // the table revision it produced
	Time     time.Time `json:"time"`
	Who      string    `json:"who"`  // operator or component
	What     string    `json:"what"` // e.g. "unit drain 3"
}

// Open opens the routing table named by spec: "etcd://HOST:PORT[,HOST:PORT]/PREFIX"
// for etcd, anything else is a file path.
func Open(ctx context.Context, spec string, opts FileOptions) (Editor, error) {
	if strings.HasPrefix(spec, "etcd://") {
		return OpenEtcd(ctx, spec, EtcdOptions{Logger: opts.Logger})
	}
	return OpenFile(spec, opts)
}

// maxUpdateAttempts bounds how often Update re-applies a change that lost a
// race with another editor.
const maxUpdateAttempts = 5
