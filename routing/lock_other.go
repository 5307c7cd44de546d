//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package routing

// lockFile serializes editors of the routing table at path within this
// process only: this platform has no flock, so editors in other processes
// are not excluded.
func lockFile(path string) (unlock func(), err error) {
	mu, err := processLock(path)
	if err != nil {
		return nil, err
	}
	mu.Lock()
	return mu.Unlock, nil
}
