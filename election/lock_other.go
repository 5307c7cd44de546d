//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package election

import "errors"

// tryLock fails: this platform has no flock, so a table file's
// controllers could not exclude each other. Use an etcd table.
func tryLock(string) (func(), bool, error) {
	return nil, false, errors.New("election: a lock file's lock needs flock; use an etcd routing table")
}
