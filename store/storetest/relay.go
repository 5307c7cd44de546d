package storetest

import (
	"context"
	"strings"
	"testing"
	"time"

	"tradeunit"
)

// testRelayLease: one relay at a time holds a lease; a lost lease cannot
// move the cursor, and the cursor never moves back.
func testRelayLease(t *testing.T, open Opener) {
	ctx := context.Background()
	ob := outboxOf(t, open(t))
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	sec := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }
	const ttl = 10 * time.Second
	acquire := func(holder string, now time.Time, want int64) {
		t.Helper()
		got, err := ob.AcquireRelay(ctx, "main", holder, ttl, now)
		if err != nil || got != want {
			t.Fatalf("AcquireRelay(%s at %s): got cursor %d, %v; want %d", holder, now, got, err, want)
		}
	}
	refused := func(what string, err error, holder string) {
		t.Helper()
		wantCode(t, what, err, tradeunit.CodeLeaseHeld)
		if holder != "" && !strings.Contains(tradeunit.ErrorMessage(err), holder) {
			t.Fatalf("%s: got message %q, want it to name holder %s", what, tradeunit.ErrorMessage(err), holder)
		}
	}
	save := func(holder string, cursor int64, now time.Time) error {
		return ob.SaveRelayCursor(ctx, "main", holder, cursor, now)
	}

	acquire("a", t0, 0) // a first run
	_, err := ob.AcquireRelay(ctx, "main", "b", ttl, sec(1))
	refused("another holder's lease", err, "a")
	if err := save("b", 99, sec(1)); !tradeunit.IsCode(err, tradeunit.CodeLeaseHeld) {
		t.Fatalf("save by a refused acquirer: got %v, want LEASE_HELD", err)
	}
	if err := save("a", 5, sec(2)); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the same save twice changes nothing, and is no error
		if err := save("a", 5, sec(2)); err != nil {
			t.Fatalf("repeated save: %v", err)
		}
	}
	if err := save("a", 3, sec(2)); err != nil {
		t.Fatalf("save behind the cursor: %v", err)
	}
	acquire("a", sec(3), 5) // a renewal keeps the cursor, not moved back; a holds until 13 s

	_, err = ob.AcquireRelay(ctx, "main", "b", ttl, sec(13))
	refused("a lease at its last instant", err, "a")
	acquire("b", sec(14), 5) // expired: taken over, with its cursor
	refused("save by the holder taken over", save("a", 9, sec(14)), "b")
	acquire("b", sec(15), 5) // nothing of a's was written

	if err := ob.ReleaseRelay(ctx, "main", "a"); err != nil { // not a's: no effect
		t.Fatal(err)
	}
	_, err = ob.AcquireRelay(ctx, "main", "c", ttl, sec(16))
	refused("after a release by one who does not hold it", err, "b")
	if err := ob.ReleaseRelay(ctx, "main", "b"); err != nil {
		t.Fatal(err)
	}
	refused("save after release", save("b", 6, sec(16)), "")
	acquire("c", sec(16), 5) // at once after the release
	if err := save("c", 8, sec(17)); err != nil {
		t.Fatal(err)
	}
	acquire("c", sec(18), 8)

	// A lease that expired without a takeover fences its holder too.
	if _, err := ob.AcquireRelay(ctx, "other", "a", time.Second, t0); err != nil {
		t.Fatal(err)
	}
	refused("save after expiry", ob.SaveRelayCursor(ctx, "other", "a", 1, sec(2)), "")
	refused("save on a lease never acquired", ob.SaveRelayCursor(ctx, "never", "a", 1, t0), "")
	for name, err := range map[string]error{
		"empty holder":    ob.SaveRelayCursor(ctx, "main", "", 1, t0),
		"negative cursor": ob.SaveRelayCursor(ctx, "main", "c", -1, sec(18)),
		"zero ttl": func() error {
			_, err := ob.AcquireRelay(ctx, "main", "c", 0, sec(18))
			return err
		}(),
	} {
		wantCode(t, name, err, tradeunit.CodeParamError)
	}
}
