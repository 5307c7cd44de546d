// Package election decides which of several controllers of one routing
// table acts: an exclusive flock on a lock file beside a table file, or an
// etcd lease election under an etcd table's prefix. The lifecycle and the
// failover controllers each run one, under their own name, so that one of
// each acts at a time.
package election

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"

	"tradeunit/routing"
)

// Election decides which of several controllers of one routing table acts.
type Election interface {
	// Campaign blocks until this controller is the active one, or ctx
	// ends (its error). The channel it returns closes if the role is lost
	// (an etcd lease that expired); a file lock is only given up.
	Campaign(ctx context.Context) (lost <-chan struct{}, err error)
	// Resign gives the role up, so that a standby takes over at once.
	Resign() error
}

// Serve runs term for each spell in which e makes this controller the
// active one (term returns when lost closes or ctx ends), campaigning again
// after each, retrying a failed campaign every retry, until ctx ends; then
// it resigns. name is what the logs call the controller.
func Serve(ctx context.Context, e Election, retry time.Duration, log *slog.Logger, name string,
	term func(ctx context.Context, lost <-chan struct{})) {
	defer e.Resign()
	for ctx.Err() == nil {
		log.Info(name + " standby: waiting to become the active one")
		lost, err := e.Campaign(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Warn(name+" election failed; trying again", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(retry):
			}
			continue
		}
		term(ctx, lost)
	}
}

// ForTable returns the election of the controllers called name
// ("lifecycle", "failover") of the routing table spec: in etcd, a lease
// election (NewEtcd) under PREFIX/NAME-election; beside a table file, a
// flock (NewFile) on FILE.NAME.lock. The two kinds of controller elect
// apart: each kind has its own active one. closeFn releases the election.
func ForTable(spec, name string, tlsConfig *tls.Config, ttl, retry time.Duration, holder string) (e Election, closeFn func() error, err error) {
	if !routing.IsEtcd(spec) {
		return NewFile(spec+"."+name+".lock", retry), func() error { return nil }, nil
	}
	etcd, err := NewEtcd(spec, tlsConfig, ttl, holder, "/"+name+"-election")
	if err != nil {
		return nil, nil, err
	}
	return etcd, etcd.Close, nil
}

// NewFile returns the election of an exclusive flock on the file at path,
// tried every retry. The operating system releases it when the process
// dies, so a standby takes over within retry.
func NewFile(path string, retry time.Duration) Election {
	return &fileElection{path: path, retry: retry}
}

type fileElection struct {
	path  string
	retry time.Duration

	mu     sync.Mutex
	unlock func()
}

func (e *fileElection) Campaign(ctx context.Context) (<-chan struct{}, error) {
	for {
		unlock, ok, err := tryLock(e.path)
		if err != nil {
			return nil, err
		}
		if ok {
			e.mu.Lock()
			e.unlock = unlock
			e.mu.Unlock()
			return make(chan struct{}), nil // a held flock is never lost
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(e.retry):
		}
	}
}

func (e *fileElection) Resign() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.unlock != nil {
		e.unlock()
		e.unlock = nil
	}
	return nil
}

// NewEtcd returns the election of the controllers of the etcd table spec
// names (etcd://HOST:PORT[,...]/PREFIX), under PREFIX+key: each controller
// campaigns with a lease of ttl, which it renews while alive; holder names
// it. tlsConfig is the client's (nil: plaintext). Close the election when
// done.
func NewEtcd(spec string, tlsConfig *tls.Config, ttl time.Duration, holder, key string) (*Etcd, error) {
	endpoints, prefix, err := routing.ParseEtcdSpec(spec)
	if err != nil {
		return nil, err
	}
	if tlsConfig != nil {
		for i, ep := range endpoints {
			endpoints[i] = "https://" + strings.TrimPrefix(ep, "http://")
		}
	}
	c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, TLS: tlsConfig, DialTimeout: 3 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return nil, fmt.Errorf("election: connect to etcd %v: %w", endpoints, err)
	}
	return &Etcd{client: c, key: prefix + key, ttl: ttl, holder: holder}, nil
}

// Etcd is an Election in etcd (see NewEtcd).
type Etcd struct {
	client *clientv3.Client
	key    string
	ttl    time.Duration
	holder string

	mu       sync.Mutex
	session  *concurrency.Session
	election *concurrency.Election
}

// Campaign opens a lease session and campaigns with it; the role is lost
// when the session ends (its lease expired while etcd was out of reach).
func (e *Etcd) Campaign(ctx context.Context) (<-chan struct{}, error) {
	s, err := concurrency.NewSession(e.client, concurrency.WithTTL(max(1, int(e.ttl.Seconds()))), concurrency.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("election %s: lease: %w", e.key, err)
	}
	el := concurrency.NewElection(s, e.key)
	if err := el.Campaign(ctx, e.holder); err != nil {
		s.Close()
		return nil, err
	}
	e.mu.Lock()
	e.session, e.election = s, el
	e.mu.Unlock()
	return s.Done(), nil
}

// Resign gives the role up and revokes the lease.
func (e *Etcd) Resign() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.session == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	err := e.election.Resign(ctx)
	e.session.Close()
	e.session, e.election = nil, nil
	return err
}

// Close gives the role up and closes the etcd client.
func (e *Etcd) Close() error {
	e.Resign()
	return e.client.Close()
}
