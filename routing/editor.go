package routing

import (
	"context"
	"strings"
	"time"
)

// Store is a document that operators change: a Feed plus safe updates and
// a record of who changed what. Every backend (a file, etcd, memory)
// implements it, so proxies, units, the health checker and the admin
// commands work against any.
type Store[D any] interface {
	Feed[D]
	// Update applies fn to a copy of the current version and publishes the
	// result as the next revision, recording change. It is a
	// compare-and-swap: if another editor changed the document in between,
	// fn is applied again to the newer version (a few times at most, then
	// the update fails with ErrConflict), so no change is ever lost. If fn
	// or validation fails nothing is written.
	Update(ctx context.Context, change Change, fn func(*D) error) (*D, error)
	// History returns the latest changes, newest first.
	History(ctx context.Context, limit int) ([]Change, error)
}

// Editor is the routing table that operators change.
type Editor = Store[Table]

// TopologyEditor is the storage topology that operators and controllers
// change.
type TopologyEditor = Store[Topology]

// Change describes one update of a document.
type Change struct {
	Revision int64     `json:"revision"` // the revision it produced
	Time     time.Time `json:"time"`
	Who      string    `json:"who"`  // operator or component
	What     string    `json:"what"` // e.g. "unit drain 3"
	// Subject is the subject of the certificate the change was made with
	// (CN=admin,OU=alice,O=tradeunit): who, proven rather than claimed.
	Subject string `json:"subject,omitempty"`
	Why     string `json:"why,omitempty"` // the operator's reason
}

// IsEtcd reports whether spec names a document in etcd
// ("etcd://HOST:PORT[,HOST:PORT]/PREFIX") rather than a file.
func IsEtcd(spec string) bool { return strings.HasPrefix(spec, "etcd://") }

// Open opens the routing table named by spec: etcd://HOST:PORT[,...]/PREFIX
// for etcd, anything else is a file path.
func Open(ctx context.Context, spec string, opts Options) (Editor, error) {
	if IsEtcd(spec) {
		return nilOnError(OpenEtcd(ctx, spec, opts))
	}
	return nilOnError(OpenFile(spec, opts))
}

// OpenTopology opens the storage topology that lives beside the routing
// table named by spec: PREFIX/storage in etcd, or TopologyPath(spec) beside
// a table file.
func OpenTopology(ctx context.Context, spec string, opts Options) (TopologyEditor, error) {
	if IsEtcd(spec) {
		return nilOnError(OpenTopologyEtcd(ctx, spec, opts))
	}
	return nilOnError(OpenTopologyFile(TopologyPath(spec), opts))
}

// nilOnError returns a nil Store, not a Store holding a nil backend, when
// opening failed: a caller's "if s != nil { s.Close() }" must hold.
func nilOnError[D any, S Store[D]](s S, err error) (Store[D], error) {
	if err != nil {
		return nil, err
	}
	return s, nil
}

// maxUpdateAttempts bounds how often Update re-applies a change that lost a
// race with another editor.
const maxUpdateAttempts = 5
