//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package election

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// tryLock takes an exclusive flock on path without waiting. The lock
// belongs to the open file, not the process, so two controllers of one
// process (a test) exclude each other too. The file is left in place:
// removing it would let two controllers lock different files.
func tryLock(path string) (unlock func(), ok bool, err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, false, fmt.Errorf("election lock: %w", err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if errors.Is(err, syscall.EWOULDBLOCK) {
		f.Close()
		return nil, false, nil
	}
	if err != nil {
		f.Close()
		return nil, false, fmt.Errorf("election lock %s: %w", path, err)
	}
	return func() { f.Close() }, true, nil // closing releases the flock
}
