package storetest

import (
	"context"
	"testing"

	"tradeunit"
)

// testBindUnit: a storage holds one unit, and says so to any other.
func testBindUnit(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	if err := s.BindUnit(ctx, 7); err != nil {
		t.Fatal(err)
	}
	if err := open(t).BindUnit(ctx, 7); err != nil {
		t.Fatalf("the same unit again, from another handle: %v", err)
	}
	err := open(t).BindUnit(ctx, 8)
	if tradeunit.ErrorCode(err) != tradeunit.CodeInvalidRequest {
		t.Fatalf("another unit: got %v, want INVALID_REQUEST", err)
	}
}
