package routing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"tradeunit"
)

// Etcd is the routing table kept in etcd, shared by every proxy, unit and
// health checker on every host. The whole table is one key, PREFIX/table, so
// every change is one compare-and-swap on that key's revision; each change
// also writes PREFIX/history/REVISION describing who changed what.
//
// A reader that loses etcd keeps serving its last good table, says so (Stale,
// and a warning in the log), and resyncs when etcd answers again.
type Etcd struct {
	client *clientv3.Client
	prefix string
	feed   *broadcaster
	log    *slog.Logger
	stale  atomic.Bool

	mu     sync.Mutex // orders publishing: a table is published only if newer
	modRev int64      // etcd revision of the table key we hold
	stop   context.CancelFunc
	done   chan struct{}
}

var _ Editor = (*Etcd)(nil)

// EtcdOptions configures an Etcd table.
type EtcdOptions struct {
	// CheckInterval is how often the reader checks that etcd answers and
	// that it holds the latest table (default 500 ms); the watch delivers
	// changes at once, the check catches what a broken watch missed.
	CheckInterval time.Duration
	Logger        *slog.Logger
}

// ErrNoTable is returned by OpenEtcd when etcd holds no table yet: create
// one with InitEtcd.
var ErrNoTable = errors.New("no routing table in etcd")

// ParseEtcdSpec splits "etcd://HOST:PORT[,HOST:PORT]/PREFIX".
func ParseEtcdSpec(spec string) (endpoints []string, prefix string, err error) {
	u, err := url.Parse(spec)
	if err != nil || u.Scheme != "etcd" || u.Host == "" {
		return nil, "", tradeunit.Errorf(tradeunit.CodeParamError, "routing table %q: want etcd://HOST:PORT[,HOST:PORT]/PREFIX", spec)
	}
	for _, h := range strings.Split(u.Host, ",") {
		endpoints = append(endpoints, "http://"+h)
	}
	prefix = strings.TrimSuffix(u.Path, "/")
	if prefix == "" {
		prefix = "/tradeunit"
	}
	return endpoints, prefix, nil
}

func dialEtcd(spec string) (*clientv3.Client, string, error) {
	endpoints, prefix, err := ParseEtcdSpec(spec)
	if err != nil {
		return nil, "", err
	}
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 3 * time.Second,
		// Quiet the client's own logger; we log what matters at the edge.
		Logger: nopZap(),
	})
	if err != nil {
		return nil, "", fmt.Errorf("connect to etcd %v: %w", endpoints, err)
	}
	return c, prefix, nil
}

// InitEtcd stores t as the first table under spec's prefix; it fails if a
// table is there already.
func InitEtcd(ctx context.Context, spec string, t *Table, change Change) error {
	c, prefix, err := dialEtcd(spec)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := t.Validate(); err != nil {
		return err
	}
	t = t.Clone()
	t.Normalize()
	data, err := t.Marshal()
	if err != nil {
		return err
	}
	change.Revision, change.Time = t.Revision, time.Now().UTC()
	hist, _ := json.Marshal(change)
	key := prefix + "/table"
	resp, err := c.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(data)), clientv3.OpPut(historyKey(prefix, t.Revision), string(hist))).Commit()
	if err != nil {
		return fmt.Errorf("init routing table: %w", err)
	}
	if !resp.Succeeded {
		return tradeunit.Errorf(tradeunit.CodeInvalidRequest, "etcd already holds a routing table under %s", prefix)
	}
	return nil
}

// OpenEtcd loads the table under spec's prefix and follows its changes.
func OpenEtcd(ctx context.Context, spec string, opts EtcdOptions) (*Etcd, error) {
	c, prefix, err := dialEtcd(spec)
	if err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.CheckInterval <= 0 {
		opts.CheckInterval = 500 * time.Millisecond
	}
	e := &Etcd{client: c, prefix: prefix, log: opts.Logger, done: make(chan struct{})}
	t, rev, err := e.load(ctx)
	if err != nil {
		c.Close()
		return nil, err
	}
	e.feed = newBroadcaster(t)
	e.modRev = rev
	runCtx, stop := context.WithCancel(context.Background())
	e.stop = stop
	go e.run(runCtx, opts.CheckInterval)
	return e, nil
}

func (e *Etcd) key() string { return e.prefix + "/table" }

func historyKey(prefix string, rev int64) string {
	return fmt.Sprintf("%s/history/%020d", prefix, rev)
}

// load reads the table and the etcd revision of its key. A second is long
// for etcd on a healthy network: past it the reader calls etcd lost.
func (e *Etcd) load(ctx context.Context) (*Table, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	resp, err := e.client.Get(ctx, e.key())
	if err != nil {
		return nil, 0, fmt.Errorf("read routing table from etcd: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return nil, 0, fmt.Errorf("%w under %s", ErrNoTable, e.prefix)
	}
	t, err := Parse(resp.Kvs[0].Value)
	if err != nil {
		return nil, 0, fmt.Errorf("routing table in etcd: %w", err)
	}
	return t, resp.Kvs[0].ModRevision, nil
}

// run follows the table: the watch delivers changes at once; the periodic
// check notices a lost etcd, and resyncs after a broken watch.
func (e *Etcd) run(ctx context.Context, every time.Duration) {
	defer close(e.done)
	tick := time.NewTicker(every)
	defer tick.Stop()
	var backoff time.Duration
	for ctx.Err() == nil {
		// A watch that fails at once (compacted revision, no leader) must
		// not be remade in a tight loop: wait, growing up to the check
		// interval; the check resyncs the table meanwhile.
		if backoff > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
		}
		backoff = min(max(2*backoff, 10*time.Millisecond), every)
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		watch := e.client.Watch(wctx, e.key(), clientv3.WithRev(e.heldRev()+1))
	follow:
		for {
			select {
			case <-ctx.Done():
				cancel()
				return
			case resp, ok := <-watch:
				if !ok || resp.Err() != nil {
					break follow // compacted, leader lost, or closed: resync and watch again
				}
				backoff = 0
				for _, ev := range resp.Events {
					if ev.Type == clientv3.EventTypePut {
						e.accept(ev.Kv.Value, ev.Kv.ModRevision)
					}
				}
			case <-tick.C:
				t, rev, err := e.load(ctx)
				if err != nil {
					if !e.stale.Swap(true) && ctx.Err() == nil {
						e.log.Warn("routing table: etcd unreachable; serving the last good table", "revision", e.Current().Revision, "err", err)
					}
					continue
				}
				if e.stale.Swap(false) {
					e.log.Info("routing table: etcd reachable again; resynced", "revision", t.Revision)
				}
				if e.publish(t, rev) {
					backoff = 0
					break follow // the watch fell behind: restart it from here
				}
			}
		}
		cancel()
	}
}

// accept publishes a table read from etcd at revision rev.
func (e *Etcd) accept(data []byte, rev int64) {
	if rev <= e.heldRev() {
		return
	}
	t, err := Parse(data)
	if err != nil {
		e.log.Warn("routing table: ignoring an invalid table in etcd", "err", err)
		return
	}
	e.publish(t, rev)
}

// publish makes t current if rev is newer than the table held, and reports
// whether it did.
func (e *Etcd) publish(t *Table, rev int64) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if rev <= e.modRev {
		return false
	}
	e.modRev = rev
	e.feed.publish(t)
	return true
}

func (e *Etcd) heldRev() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.modRev
}

func nopZap() *zap.Logger { return zap.NewNop() }

// Current implements Source.
func (e *Etcd) Current() *Table { return e.feed.current.Load() }

// Watch implements Source.
func (e *Etcd) Watch(ctx context.Context) <-chan *Table { return e.feed.watch(ctx) }

// Stale reports whether etcd could not be reached at the last check: the
// table served is the last good one and may be out of date.
func (e *Etcd) Stale() bool { return e.stale.Load() }

// Close implements Source.
func (e *Etcd) Close() error {
	e.stop()
	<-e.done
	e.feed.close()
	return e.client.Close()
}

// Update implements Editor with a transaction that commits only if the table
// key is still at the revision fn was applied to.
func (e *Etcd) Update(ctx context.Context, change Change, fn func(*Table) error) (*Table, error) {
	for attempt := 0; attempt < maxUpdateAttempts; attempt++ {
		cur, rev, err := e.load(ctx)
		if err != nil {
			return nil, err
		}
		next := cur.Clone()
		if err := fn(next); err != nil {
			return nil, err
		}
		next.Revision = cur.Revision + 1
		next.Normalize()
		if err := next.Validate(); err != nil {
			return nil, err
		}
		data, err := next.Marshal()
		if err != nil {
			return nil, err
		}
		change.Revision, change.Time = next.Revision, time.Now().UTC()
		hist, _ := json.Marshal(change)
		resp, err := e.client.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(e.key()), "=", rev)).
			Then(clientv3.OpPut(e.key(), string(data)), clientv3.OpPut(historyKey(e.prefix, next.Revision), string(hist))).
			Commit()
		if err != nil {
			return nil, fmt.Errorf("update routing table in etcd: %w", err)
		}
		if resp.Succeeded {
			e.accept(data, resp.Header.Revision)
			return next, nil
		}
	}
	return nil, &tradeunit.Error{Code: tradeunit.CodeInvalidRequest, Op: "routing.Etcd.Update", Err: ErrConflict,
		Message: fmt.Sprintf("routing table kept changing under %d attempts; try again", maxUpdateAttempts)}
}

// History implements Editor.
func (e *Etcd) History(ctx context.Context, limit int) ([]Change, error) {
	resp, err := e.client.Get(ctx, e.prefix+"/history/", clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(int64(limit)))
	if err != nil {
		return nil, fmt.Errorf("read routing history from etcd: %w", err)
	}
	out := make([]Change, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var c Change
		if json.Unmarshal(kv.Value, &c) == nil {
			out = append(out, c)
		}
	}
	return out, nil
}
