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

func TestParseCPULine(t *testing.T) {
	tests := []struct {
		line    string
		want    MachineTicks
		wantErr bool
	}{
		{line: "cpu  100 5 50 800 10 1 4 30 0 0", want: MachineTicks{Total: 1000, Steal: 30}},
		{line: "cpu  1 2 3 4 5 6 7 8", want: MachineTicks{Total: 36, Steal: 8}},
		{line: "cpu0 1 2 3 4 5 6 7 8", wantErr: true},
		{line: "cpu 1 2 3", wantErr: true},
		{line: "cpu 1 2 3 4 5 6 7 x", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseCPULine(tt.line)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseCPULine(%q) = %+v, %v; want %+v, error %v", tt.line, got, err, tt.want, tt.wantErr)
		}
	}
	if got := StealShare(MachineTicks{Total: 1000, Steal: 30}, MachineTicks{Total: 2000, Steal: 280}); got != 0.25 {
		t.Errorf("StealShare: got %v, want 0.25", got)
	}
	if _, err := ReadMachineTicks(); err != nil {
		t.Errorf("ReadMachineTicks: %v", err)
	}
}
