package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"tradeunit"
	"tradeunit/store/sqlstore"
)

// TestSyncChangedCopiesOnlyTheChanges: after a full sync, the source
// changes (pays, refunds, closes, new orders, a superseded attempt, a relay
// cursor, probe orders deleted by the janitor, no event): SyncChanged from
// the outbox event read before the changes finds them by verifying, copies
// them while reading a fraction of the unit, and leaves the copy equal to
// the source by a full verification.
func TestSyncChangedCopiesOnlyTheChanges(t *testing.T) {
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			ctx := context.Background()
			src, dst := p.src(t), p.dst(t)
			base := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
			orders := fill(t, src, base, 400)
			probe := newOrderAt(t, tradeunit.ProbeMchid, base.Add(time.Hour), 1)
			if _, _, err := src.CreateOrder(ctx, probe); err != nil {
				t.Fatal(err)
			}
			mustSync(t, src, dst, sqlstore.SyncOptions{})
			afterEvent := maxEventID(t, src) // single-threaded: no write in flight

			for i := 0; i < 40; i += 4 {
				if _, err := src.PayOrder(ctx, mch, orders[i].OrderNo, fmt.Sprintf("late-%d", i), base.Add(time.Hour)); err != nil {
					t.Fatal(err)
				}
			}
			mustRefund(t, src, orders[1], "late-refund", 5)
			if _, err := src.CloseOrder(ctx, mch, orders[100].OrderNo, base.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if _, _, err := src.CreateOrder(ctx, newOrderAt(t, mch, base.Add(24*time.Hour), 7)); err != nil {
				t.Fatal(err)
			}
			if _, err := src.SupersedeAttempt(ctx, mch, "lost-late", 3); err != nil && !tradeunit.IsCode(err, tradeunit.CodeNotFound) {
				t.Fatal(err)
			}
			if err := src.SaveRelayCursor(ctx, "relay", "h1", 30, base); err != nil {
				t.Fatal(err)
			}
			if n, err := src.DeleteProbeOrders(ctx, base.Add(2*time.Hour), 10); err != nil || n != 1 {
				t.Fatalf("DeleteProbeOrders: %d, %v", n, err)
			}

			verify, err := sqlstore.SyncChanged(ctx, src, dst, afterEvent, sqlstore.SyncOptions{VerifyOnly: true})
			if !errors.Is(err, sqlstore.ErrCopyDiffers) || verify.RangesDiffering == 0 {
				t.Fatalf("targeted verify after changes: %d differing, %v; want some and ErrCopyDiffers", verify.RangesDiffering, err)
			}
			rep, err := sqlstore.SyncChanged(ctx, src, dst, afterEvent, sqlstore.SyncOptions{})
			if err != nil {
				t.Fatal(err)
			}
			size, err := src.Size(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if rep.RowsChecked*4 > size.Rows {
				t.Errorf("SyncChanged read %d of the source's %d rows; want a fraction", rep.RowsChecked, size.Rows)
			}
			if _, err := sqlstore.SyncChanged(ctx, src, dst, afterEvent, sqlstore.SyncOptions{VerifyOnly: true}); err != nil {
				t.Fatalf("targeted verify after SyncChanged: %v", err)
			}
			wantEqual(t, src, dst) // the full comparison agrees
			wantSameOrders(t, src, dst)
		})
	}
}
