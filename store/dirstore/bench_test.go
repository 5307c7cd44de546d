package dirstore_test

import (
	"context"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"tradeunit"
	"tradeunit/batch"
	"tradeunit/dsn"
	"tradeunit/store/storetest"
)

// benchWriters is how many goroutines put at once: a directory shard's
// service serving that many concurrent creates.
const benchWriters = 16

// BenchmarkPut puts single entries from benchWriters goroutines, each a
// create's two writes in turn (reserve at version 1, commit at version 2),
// direct and through Batched with several waits. It reports Puts per
// second, the process's CPU per Put (client side only on MariaDB), the
// latency of a Put, the mean batch, and the CPU steal share of the host
// during the run (MEASURED.md: the machines are noisy). Compare figures
// of one run only; run it several times.
func BenchmarkPut(b *testing.B) {
	storages := []struct {
		name string
		dsn  func(b *testing.B) dsn.DSN
	}{
		{"sqlite", func(b *testing.B) dsn.DSN { return sqliteDSN(b) }},
		{"mysql", func(b *testing.B) dsn.DSN { return storetest.NewMySQLDatabase(b) }},
	}
	modes := []struct {
		name string
		cfg  *batch.Config // nil: direct
	}{
		{"direct", nil},
		{"batched-wait0", &batch.Config{Flushers: 1, MaxSize: 128}},
		{"batched-wait200us", &batch.Config{Flushers: 1, MaxSize: 128, MaxWait: 200 * time.Microsecond}},
		{"batched-wait1ms", &batch.Config{Flushers: 1, MaxSize: 128, MaxWait: time.Millisecond}},
	}
	for _, st := range storages {
		for _, m := range modes {
			b.Run(st.name+"/"+m.name, func(b *testing.B) {
				var s tradeunit.DirectoryStore = open(b, st.dsn(b))
				var stats func() batch.Stats
				if m.cfg != nil {
					bs := batched(b, s, *m.cfg)
					s, stats = bs, bs.Stats
				}
				runPuts(b, s, stats)
			})
		}
	}
}

// runPuts runs b.N Puts from benchWriters goroutines; stats, if not nil,
// tells the batches.
func runPuts(b *testing.B, s tradeunit.DirectoryStore, stats func() batch.Stats) {
	ctx := context.Background()
	var next atomic.Int64
	lat := make([][]time.Duration, benchWriters)
	steal0, total0 := cpuSteal()
	cpu0 := processCPU()
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := range benchWriters {
		wg.Go(func() {
			var e *tradeunit.DirectoryEntry
			for next.Add(1) <= int64(b.N) {
				if e == nil || e.Version == 2 {
					e = newEntry(1)
				} else {
					e = e.Clone()
					e.State, e.RecordNo, e.Version = tradeunit.EntryCommitted, "1000010000000000000000000001", 2
				}
				start := time.Now()
				if r := s.Put(ctx, []*tradeunit.DirectoryEntry{e})[0]; r.Err != nil {
					b.Errorf("Put: %v", r.Err)
					return
				}
				lat[w] = append(lat[w], time.Since(start))
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	el := b.Elapsed().Seconds()
	b.ReportMetric(float64(b.N)/el, "puts/s")
	b.ReportMetric(float64(processCPU()-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/put")
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) > 0 {
		b.ReportMetric(float64(all[len(all)/2])/float64(time.Microsecond), "p50-µs")
		b.ReportMetric(float64(all[len(all)*99/100])/float64(time.Microsecond), "p99-µs")
	}
	if stats != nil {
		st := stats()
		b.ReportMetric(float64(st.Items)/float64(max(st.Batches, 1)), "puts/batch")
	}
	if steal1, total1 := cpuSteal(); total1 > total0 {
		b.ReportMetric(100*float64(steal1-steal0)/float64(total1-total0), "steal%")
	}
}

// cpuSteal returns the host's stolen and total CPU time so far, in ticks
// (/proc/stat's first line); zeros where it cannot be read.
func cpuSteal() (steal, total uint64) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	fields := strings.Fields(line)
	for i, f := range fields[1:] {
		n, _ := strconv.ParseUint(f, 10, 64)
		if i < 8 { // user nice system idle iowait irq softirq steal; guest is in user
			total += n
		}
		if i == 7 {
			steal = n
		}
	}
	return steal, total
}

// processCPU returns the CPU time the process has used (user + system).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
