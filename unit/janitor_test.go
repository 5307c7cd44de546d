package unit

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// fakeDeleter holds n probe orders, all old enough, and deletes them in the
// batches asked for.
type fakeDeleter struct {
	mu      sync.Mutex
	left    int
	calls   int
	cutoffs []time.Time
	fail    bool
}

func (f *fakeDeleter) DeleteProbeOrders(ctx context.Context, before time.Time, limit int) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.cutoffs = append(f.cutoffs, before)
	if f.fail {
		return 0, errors.New("storage refuses")
	}
	n := min(limit, f.left)
	f.left -= n
	return n, nil
}

func TestJanitorDeletesInBatches(t *testing.T) {
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	store := &fakeDeleter{left: 25}
	ctx, cancel := context.WithCancel(context.Background())
	var deleted []int
	done := make(chan struct{})
	go func() {
		defer close(done)
		RunJanitor(ctx, store, JanitorConfig{Retention: time.Minute, Every: 10 * time.Millisecond, Batch: 10,
			Now: func() time.Time { return now }, Deleted: func(n int) { deleted = append(deleted, n) }}, quietLog())
	}()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		store.mu.Lock()
		calls := store.calls
		store.mu.Unlock()
		if calls >= 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("janitor did not run")
		}
	}
	cancel()
	<-done
	if len(deleted) != 3 || deleted[0] != 10 || deleted[1] != 10 || deleted[2] != 5 {
		t.Fatalf("batches deleted: %v, want [10 10 5] in the first run", deleted)
	}
	if !store.cutoffs[0].Equal(now.Add(-time.Minute)) {
		t.Fatalf("cutoff %v, want now - retention", store.cutoffs[0])
	}
}

func TestJanitorSurvivesStorageErrors(t *testing.T) {
	store := &fakeDeleter{fail: true}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	RunJanitor(ctx, store, JanitorConfig{Retention: time.Minute, Every: 10 * time.Millisecond, Batch: 500}, quietLog())
	store.mu.Lock()
	defer store.mu.Unlock()
	if store.calls < 2 {
		t.Fatalf("janitor stopped after an error: %d calls", store.calls)
	}
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
