package routing

import (
	"context"
	"crypto/tls"
	"crypto/x509"
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

// Etcd is a document kept in etcd, shared by every process on every host.
// The whole document is one key (PREFIX/table for the routing table,
// PREFIX/storage for the storage topology), so every change is one
// compare-and-swap on that key's revision; each change also writes
// PREFIX/history/REVISION (PREFIX/storage-history/REVISION) describing who
// changed what.
//
// A reader that loses etcd keeps serving its last good version, says so
// (Stale, and a warning in the log), and resyncs when etcd answers again.
type Etcd[D any, P document[D]] struct {
	client *clientv3.Client
	prefix string
	feed   *broadcaster[D]
	log    *slog.Logger
	stale  atomic.Bool

	// subject is the subject of the client certificate the store writes
	// with; every change's history records it, whatever its caller said.
	subject string

	mu     sync.Mutex // orders publishing: a version is published only if newer
	modRev int64      // etcd revision of the key we hold
	stop   context.CancelFunc
	done   chan struct{}
}

// TableEtcd is the routing table in etcd.
type TableEtcd = Etcd[Table, *Table]

// TopologyEtcd is the storage topology in etcd.
type TopologyEtcd = Etcd[Topology, *Topology]

var (
	_ Editor         = (*TableEtcd)(nil)
	_ TopologyEditor = (*TopologyEtcd)(nil)
)

// ErrNoTable is returned by OpenEtcd when etcd holds no document yet:
// create one with InitEtcd.
var ErrNoTable = errors.New("nothing stored in etcd yet")

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

// dialEtcd connects to spec's etcd: over https with tlsConfig's client
// certificate (which etcd takes as the user, by its common name) when
// tlsConfig is set, over http otherwise.
func dialEtcd(spec string, tlsConfig *tls.Config) (*clientv3.Client, string, error) {
	endpoints, prefix, err := ParseEtcdSpec(spec)
	if err != nil {
		return nil, "", err
	}
	if tlsConfig != nil {
		for i, e := range endpoints {
			endpoints[i] = "https://" + strings.TrimPrefix(e, "http://")
		}
	}
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		TLS:         tlsConfig,
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
// table is there already. tlsConfig is the client's (nil: plaintext).
func InitEtcd(ctx context.Context, spec string, tlsConfig *tls.Config, t *Table, change Change) error {
	return initEtcd(ctx, spec, tlsConfig, t, change)
}

// InitTopologyEtcd is InitEtcd for the storage topology.
func InitTopologyEtcd(ctx context.Context, spec string, tlsConfig *tls.Config, t *Topology, change Change) error {
	return initEtcd(ctx, spec, tlsConfig, t, change)
}

func initEtcd[D any, P document[D]](ctx context.Context, spec string, tlsConfig *tls.Config, d P, change Change) error {
	c, prefix, err := dialEtcd(spec, tlsConfig)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := d.Validate(); err != nil {
		return err
	}
	d = P(d.Clone())
	d.Normalize()
	data, err := d.Marshal()
	if err != nil {
		return err
	}
	k := d.kind()
	change.Revision, change.Time = d.revision(), time.Now().UTC()
	if s := clientSubject(tlsConfig); s != "" {
		change.Subject = s
	}
	hist, _ := json.Marshal(change)
	key := prefix + "/" + k.etcdKey
	hkey := historyKey(prefix, k, d.revision())
	resp, err := c.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0), neverWritten(hkey)).
		Then(clientv3.OpPut(key, string(data)), clientv3.OpPut(hkey, string(hist))).Commit()
	if err != nil {
		return fmt.Errorf("init %s: %w", k.name, err)
	}
	if !resp.Succeeded {
		return tradeunit.Errorf(tradeunit.CodeInvalidRequest, "etcd already holds a %s under %s", k.name, prefix)
	}
	return nil
}

// OpenEtcd loads the routing table under spec's prefix and follows its
// changes.
func OpenEtcd(ctx context.Context, spec string, opts Options) (*TableEtcd, error) {
	return openEtcd[Table](ctx, spec, opts)
}

// OpenTopologyEtcd is OpenEtcd for the storage topology.
func OpenTopologyEtcd(ctx context.Context, spec string, opts Options) (*TopologyEtcd, error) {
	return openEtcd[Topology](ctx, spec, opts)
}

func openEtcd[D any, P document[D]](ctx context.Context, spec string, opts Options) (*Etcd[D, P], error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	c, prefix, err := dialEtcd(spec, opts.TLS)
	if err != nil {
		return nil, err
	}
	e := &Etcd[D, P]{client: c, prefix: prefix, log: opts.Logger, done: make(chan struct{}), subject: clientSubject(opts.TLS)}
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

func (e *Etcd[D, P]) key() string { return e.prefix + "/" + P(nil).kind().etcdKey }

// clientSubject is the subject of the certificate tlsConfig presents, ""
// for none: the etcd authenticated that certificate, so the history can
// name it as who made a change.
func clientSubject(tlsConfig *tls.Config) string {
	if tlsConfig == nil {
		return ""
	}
	var cert *tls.Certificate
	if tlsConfig.GetClientCertificate != nil {
		cert, _ = tlsConfig.GetClientCertificate(&tls.CertificateRequestInfo{})
	} else if len(tlsConfig.Certificates) > 0 {
		cert = &tlsConfig.Certificates[0]
	}
	if cert == nil || len(cert.Certificate) == 0 {
		return ""
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return ""
	}
	return leaf.Subject.String()
}

// neverWritten guards a history entry: the history is append-only, so a
// change never overwrites the entry of an earlier one.
func neverWritten(key string) clientv3.Cmp {
	return clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
}

func historyKey(prefix string, k kind, rev int64) string {
	return fmt.Sprintf("%s/%s/%020d", prefix, k.history, rev)
}

// load reads the document and the etcd revision of its key. A second is
// long for etcd on a healthy network: past it the reader calls etcd lost.
func (e *Etcd[D, P]) load(ctx context.Context) (*D, int64, error) {
	name := P(nil).kind().name
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	resp, err := e.client.Get(ctx, e.key())
	if err != nil {
		return nil, 0, fmt.Errorf("read %s from etcd: %w", name, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, 0, fmt.Errorf("%w: no %s under %s", ErrNoTable, name, e.prefix)
	}
	d, err := parse[D, P](resp.Kvs[0].Value)
	if err != nil {
		return nil, 0, fmt.Errorf("%s in etcd: %w", name, err)
	}
	return d, resp.Kvs[0].ModRevision, nil
}

// run follows the table: the watch delivers changes at once; the periodic
// check notices a lost etcd, and resyncs after a broken watch.
func (e *Etcd[D, P]) run(ctx context.Context, every time.Duration) {
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
						e.log.Warn(P(nil).kind().name+": etcd unreachable; serving the last good version", "revision", P(e.Current()).revision(), "err", err)
					}
					continue
				}
				if e.stale.Swap(false) {
					e.log.Info(P(nil).kind().name+": etcd reachable again; resynced", "revision", P(t).revision())
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

// accept publishes a version read from etcd at revision rev.
func (e *Etcd[D, P]) accept(data []byte, rev int64) {
	if rev <= e.heldRev() {
		return
	}
	d, err := parse[D, P](data)
	if err != nil {
		e.log.Warn(P(nil).kind().name+": ignoring an invalid version in etcd", "err", err)
		return
	}
	e.publish(d, rev)
}

// publish makes d current if rev is newer than the version held, and
// reports whether it did.
func (e *Etcd[D, P]) publish(t *D, rev int64) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if rev <= e.modRev {
		return false
	}
	e.modRev = rev
	e.feed.publish(t)
	return true
}

func (e *Etcd[D, P]) heldRev() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.modRev
}

func nopZap() *zap.Logger { return zap.NewNop() }

// Current implements Feed.
func (e *Etcd[D, P]) Current() *D { return e.feed.current.Load() }

// Watch implements Feed.
func (e *Etcd[D, P]) Watch(ctx context.Context) <-chan *D { return e.feed.watch(ctx) }

// Stale reports whether etcd could not be reached at the last check: the
// version served is the last good one and may be out of date.
func (e *Etcd[D, P]) Stale() bool { return e.stale.Load() }

// Close implements Feed.
func (e *Etcd[D, P]) Close() error {
	e.stop()
	<-e.done
	e.feed.close()
	return e.client.Close()
}

// Update implements Store with a transaction that commits only if the key
// is still at the revision fn was applied to.
func (e *Etcd[D, P]) Update(ctx context.Context, change Change, fn func(*D) error) (*D, error) {
	k := P(nil).kind()
	for attempt := 0; attempt < maxUpdateAttempts; attempt++ {
		cur, rev, err := e.load(ctx)
		if err != nil {
			return nil, err
		}
		next := P(P(cur).Clone())
		if err := fn((*D)(next)); err != nil {
			return nil, err
		}
		next.setRevision(P(cur).revision() + 1)
		next.Normalize()
		if err := next.Validate(); err != nil {
			return nil, err
		}
		data, err := next.Marshal()
		if err != nil {
			return nil, err
		}
		change.Revision, change.Time = next.revision(), time.Now().UTC()
		if e.subject != "" {
			change.Subject = e.subject
		}
		hist, _ := json.Marshal(change)
		hkey := historyKey(e.prefix, k, next.revision())
		resp, err := e.client.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(e.key()), "=", rev), neverWritten(hkey)).
			Then(clientv3.OpPut(e.key(), string(data)), clientv3.OpPut(hkey, string(hist))).
			Commit()
		if err != nil {
			return nil, fmt.Errorf("update %s in etcd: %w", k.name, err)
		}
		if resp.Succeeded {
			e.accept(data, resp.Header.Revision)
			return (*D)(next), nil
		}
	}
	return nil, &tradeunit.Error{Code: tradeunit.CodeInvalidRequest, Op: "routing.Etcd.Update", Err: ErrConflict,
		Message: fmt.Sprintf("%s kept changing under %d attempts; try again", k.name, maxUpdateAttempts)}
}

// History implements Store.
func (e *Etcd[D, P]) History(ctx context.Context, limit int) ([]Change, error) {
	resp, err := e.client.Get(ctx, e.prefix+"/"+P(nil).kind().history+"/", clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(int64(limit)))
	if err != nil {
		return nil, fmt.Errorf("read %s history from etcd: %w", P(nil).kind().name, err)
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
