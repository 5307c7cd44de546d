//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package routing

import (
	"fmt"
	"os"
	"syscall"
)

// lockFile serializes editors of the routing table at path: goroutines of
// this process with a mutex, processes with an exclusive flock on
// path+".lock". The lock file is left in place: removing it would let two
// editors lock different files.
func lockFile(path string) (unlock func(), err error) {
	mu, err := processLock(path)
	if err != nil {
		return nil, err
	}
	mu.Lock()
	lf, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		mu.Unlock()
		return nil, fmt.Errorf("lock routing table: %w", err)
	}
	for {
		err = syscall.Flock(int(lf.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		lf.Close()
		mu.Unlock()
		return nil, fmt.Errorf("lock routing table %s: %w", lf.Name(), err)
	}
	return func() {
		// Closing the descriptor releases the flock.
		lf.Close()
		mu.Unlock()
	}, nil
}
