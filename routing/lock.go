package routing

import (
	"fmt"
	"path/filepath"
	"sync"
)

// processLocks holds one mutex per routing table file (by absolute path), so
// that goroutines of one process queue on a mutex rather than each blocking
// an OS thread in flock.
var processLocks sync.Map // string → *sync.Mutex

func processLock(path string) (*sync.Mutex, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("lock routing table: %w", err)
	}
	mu, _ := processLocks.LoadOrStore(abs, new(sync.Mutex))
	return mu.(*sync.Mutex), nil
}
