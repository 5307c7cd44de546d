package bench

import (
	"os"
	"testing"
	"time"
)

func TestProcessCPUGrowsWithWork(t *testing.T) {
	before, err := ProcessCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Spin until the kernel has counted 100 ms more; on a loaded machine
	// that takes longer than 100 ms of wall time, never forever.
	deadline := time.Now().Add(10 * time.Second)
	for {
		after, err := ProcessCPU(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if after-before >= 100*time.Millisecond {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("10 s of spinning counted as %v of CPU", after-before)
		}
	}
	if _, err := ProcessCPU(1 << 30); err == nil {
		t.Fatal("CPU of a missing process: got nil error")
	}
}
