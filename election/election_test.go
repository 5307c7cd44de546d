package election_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"tradeunit/election"
)

// TestFileElection: of two elections of one lock file, the second wins
// only once the first resigns.
func TestFileElection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "routes.json.test.lock")
	first, second := election.NewFile(path, 5*time.Millisecond), election.NewFile(path, 5*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := first.Campaign(ctx); err != nil {
		t.Fatal(err)
	}
	short, stop := context.WithTimeout(ctx, 100*time.Millisecond)
	defer stop()
	if _, err := second.Campaign(short); err == nil {
		t.Fatal("the second election won while the first holds the lock")
	}
	if err := first.Resign(); err != nil {
		t.Fatal(err)
	}
	if _, err := second.Campaign(ctx); err != nil {
		t.Fatalf("second campaign after the first resigned: %v", err)
	}
	second.Resign()
}
