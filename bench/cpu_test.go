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
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); {
	}
	after, err := ProcessCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if d := after - before; d < 150*time.Millisecond || d > 2*time.Second {
		t.Fatalf("300 ms of spinning counted as %v of CPU", d)
	}
	if _, err := ProcessCPU(1 << 30); err == nil {
		t.Fatal("CPU of a missing process: got nil error")
	}
}
