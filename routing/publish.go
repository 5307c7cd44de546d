package routing

import (
	"context"
	"errors"
	"os"
)

// ReplaceTable stores t as the routing table at spec: the first one, or the
// next revision of the one there (whatever t's revision), recording change
// in the history either way. It is how a whole table is published at once
// (tradeunit admin init, a local cluster starting); operators' edits go
// through Store.Update.
func ReplaceTable(ctx context.Context, spec string, t *Table, change Change, opts Options) (*Table, error) {
	return replace(ctx, spec, spec, t, change, opts)
}

// ReplaceTopology is ReplaceTable for the storage topology beside the
// routing table at spec.
func ReplaceTopology(ctx context.Context, spec string, t *Topology, change Change, opts Options) (*Topology, error) {
	return replace(ctx, spec, TopologyPath(spec), t, change, opts)
}

func replace[D any, P document[D]](ctx context.Context, spec, path string, d P, change Change, opts Options) (*D, error) {
	set := func(cur *D) error {
		rev := P(cur).revision()
		*cur = *P(d).Clone()
		P(cur).setRevision(rev)
		return nil
	}
	if IsEtcd(spec) {
		err := initEtcd(ctx, spec, opts.TLS, d, change)
		if err == nil {
			return (*D)(d), nil
		}
		e, oerr := openEtcd[D, P](ctx, spec, opts)
		if oerr != nil {
			return nil, errors.Join(err, oerr)
		}
		defer e.Close()
		return e.Update(ctx, change, set)
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if err := writeFile(path, d); err != nil {
			return nil, err
		}
		return (*D)(d), appendHistory(path, change, d.revision())
	}
	next, err := updateFile[D, P](path, set)
	if err != nil {
		return nil, err
	}
	return next, appendHistory(path, change, P(next).revision())
}
