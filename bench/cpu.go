package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is Linux's USER_HZ, the unit of /proc/PID/stat's CPU times; it
// is 100 on every architecture Go supports.
const clockTicks = 100

// ProcessCPU returns the user+system CPU time a process has used so far, from
// the kernel's own accounting (/proc/PID/stat).
func ProcessCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields after it are fixed.
	s := string(data)
	end := strings.LastIndexByte(s, ')')
	if end < 0 {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	f := strings.Fields(s[end+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parse /proc/%d/stat times", pid)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// SelfCPU returns the CPU time this process has used so far.
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// MachineTicks is the machine's CPU time so far from /proc/stat, in clock
// ticks: all of it, and what the hypervisor stole (time a vCPU was ready to
// run but the host ran something else).
type MachineTicks struct{ Total, Steal int64 }

// ReadMachineTicks reads /proc/stat's "cpu" line.
func ReadMachineTicks() (MachineTicks, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return MachineTicks{}, err
	}
	line, _, _ := strings.Cut(string(data), "\n")
	return parseCPULine(line)
}

// parseCPULine parses "cpu user nice system idle iowait irq softirq steal
// guest guest_nice"; guest time is already counted in user time.
func parseCPULine(line string) (MachineTicks, error) {
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return MachineTicks{}, fmt.Errorf("parse /proc/stat: %q", line)
	}
	var t MachineTicks
	for i, v := range f[1:9] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return MachineTicks{}, fmt.Errorf("parse /proc/stat: %q", line)
		}
		t.Total += n
		if i == 7 {
			t.Steal = n
		}
	}
	return t, nil
}

// StealShare is the share of the machine's CPU time stolen between two
// readings.
func StealShare(from, to MachineTicks) float64 {
	if to.Total <= from.Total {
		return 0
	}
	return float64(to.Steal-from.Steal) / float64(to.Total-from.Total)
}

// CPUMeter measures the CPU time of named groups of processes over a window,
// and the machine's steal share over it.
type CPUMeter struct {
	groups  map[string][]int
	start   map[string]time.Duration
	machine MachineTicks
}

// NewCPUMeter starts measuring; groups maps a layer name to its processes.
// The group "client" with no pids measures this process.
func NewCPUMeter(groups map[string][]int) *CPUMeter {
	m := &CPUMeter{groups: groups, start: map[string]time.Duration{}}
	for name := range groups {
		m.start[name] = m.read(name)
	}
	m.machine, _ = ReadMachineTicks()
	return m
}

func (m *CPUMeter) read(name string) time.Duration {
	pids := m.groups[name]
	if len(pids) == 0 {
		return SelfCPU()
	}
	var total time.Duration
	for _, pid := range pids {
		if d, err := ProcessCPU(pid); err == nil {
			total += d
		}
	}
	return total
}

// Used returns each group's CPU time since the meter started.
func (m *CPUMeter) Used() map[string]time.Duration {
	out := map[string]time.Duration{}
	for name := range m.groups {
		out[name] = m.read(name) - m.start[name]
	}
	return out
}

// Steal returns the machine's steal share since the meter started.
func (m *CPUMeter) Steal() float64 {
	now, err := ReadMachineTicks()
	if err != nil {
		return 0
	}
	return StealShare(m.machine, now)
}
