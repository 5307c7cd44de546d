package lifecycle

import (
	"crypto/tls"
	"time"

	"tradeunit/election"
)

// Election decides which of several lifecycle controllers of one routing
// table acts (package election).
type Election = election.Election

// EtcdElection is an Election in etcd (see NewEtcdElection).
type EtcdElection = election.Etcd

// LockPath is the lock file of the controllers of the table file at
// tablePath, held by the active one for as long as it acts.
func LockPath(tablePath string) string { return tablePath + ".lifecycle.lock" }

// NewFileElection returns the election of the controllers of the table
// file at tablePath: an exclusive flock on LockPath(tablePath), tried
// every retry.
func NewFileElection(tablePath string, retry time.Duration) Election {
	return election.NewFile(LockPath(tablePath), retry)
}

// EtcdElectionKey is the election's key under a table's etcd prefix.
const EtcdElectionKey = "/lifecycle-election"

// NewEtcdElection returns the election of the lifecycle controllers of the
// etcd table spec names, under PREFIX/lifecycle-election (election.NewEtcd).
func NewEtcdElection(spec string, tlsConfig *tls.Config, ttl time.Duration, holder string) (*EtcdElection, error) {
	return election.NewEtcd(spec, tlsConfig, ttl, holder, EtcdElectionKey)
}
