package unit_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"tradeunit"
	"tradeunit/dsn"
	"tradeunit/store/sqlstore"
	"tradeunit/unit"
)

// brokenStore is a Store whose every call fails as a storage fault.
type brokenStore struct{ tradeunit.Store }

func (brokenStore) Order(context.Context, string) (*tradeunit.Order, error) {
	return nil, tradeunit.Internal("broken", context.DeadlineExceeded)
}

// emptyStore is a Store that has no orders (a replica that is behind).
type emptyStore struct{ tradeunit.Store }

func (emptyStore) Order(_ context.Context, no string) (*tradeunit.Order, error) {
	return nil, tradeunit.Errorf(tradeunit.CodeNotFound, "order %s does not exist", no)
}

// storage is a tradeunit.Storage with fixed readers per consistency.
type storage struct {
	primary  tradeunit.Store
	realtime []tradeunit.Reader
	eventual []tradeunit.Reader
}

func (s *storage) Primary() (tradeunit.Store, error) {
	if s.primary == nil {
		return nil, tradeunit.Errorf(tradeunit.CodeUnitUnavailable, "failing over")
	}
	return s.primary, nil
}

func (s *storage) Readers(c tradeunit.Consistency) ([]tradeunit.Reader, error) {
	if c == tradeunit.Eventual {
		return s.eventual, nil
	}
	return s.realtime, nil
}

// TestReadFallsBack: a read tries the stores its consistency allows, in
// order; a failed store or a replica without the order passes it on; a
// replica's "not found" is never the answer; the result says where it was
// read.
func TestReadFallsBack(t *testing.T) {
	good, err := sqlstore.Open(context.Background(), dsn.MustParse("sqlite:"+filepath.Join(t.TempDir(), "unit.db")), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	svc, err := unit.New(unit.DefaultConfig(1), good)
	if err != nil {
		t.Fatal(err)
	}
	o, err := svc.CreateOrder(t.Context(), req("fallback-1", 100))
	if err != nil {
		t.Fatal(err)
	}
	replica := tradeunit.ReadInfo{Source: tradeunit.FromReplica, Staleness: 40 * time.Millisecond}
	degraded := tradeunit.ReadInfo{Source: tradeunit.FromReplica, Degraded: true, Staleness: 3 * time.Second}
	tests := []struct {
		name     string
		readers  []tradeunit.Reader
		wantInfo tradeunit.ReadInfo
		wantCode tradeunit.Code
	}{
		{"primary", []tradeunit.Reader{{Store: good}}, tradeunit.ReadInfo{}, ""},
		{"primary down, degraded replica", []tradeunit.Reader{{Store: brokenStore{}}, {Store: good, Info: degraded}}, degraded, ""},
		{"fresh replica", []tradeunit.Reader{{Store: good, Info: replica}, {Store: brokenStore{}}}, replica, ""},
		{"replica behind, then primary", []tradeunit.Reader{{Store: emptyStore{}, Info: replica}, {Store: good}}, tradeunit.ReadInfo{}, ""},
		{"primary says not found", []tradeunit.Reader{{Store: emptyStore{}}, {Store: good, Info: degraded}}, tradeunit.ReadInfo{}, tradeunit.CodeNotFound},
		{"only a replica, behind", []tradeunit.Reader{{Store: brokenStore{}}, {Store: emptyStore{}, Info: degraded}}, tradeunit.ReadInfo{}, tradeunit.CodeUnitUnavailable},
		{"all down", []tradeunit.Reader{{Store: brokenStore{}}}, tradeunit.ReadInfo{}, tradeunit.CodeInternal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &storage{realtime: tt.readers}
			svc, err := unit.NewWithStorage(unit.DefaultConfig(1), st)
			if err != nil {
				t.Fatal(err)
			}
			got, err := svc.Order(t.Context(), o.Mchid, o.OrderNo)
			if tradeunit.ErrorCode(err) != tt.wantCode {
				t.Fatalf("got %v, want code %q", err, tt.wantCode)
			}
			if err == nil && got.Read != tt.wantInfo {
				t.Errorf("read info: got %+v, want %+v", got.Read, tt.wantInfo)
			}
		})
	}

	// Changes go to the primary, and fail as UNIT_UNAVAILABLE without one.
	st := &storage{eventual: []tradeunit.Reader{{Store: good, Info: replica}}}
	svc, err = unit.NewWithStorage(unit.DefaultConfig(1), st)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateOrder(t.Context(), req("fallback-2", 100)); !tradeunit.IsCode(err, tradeunit.CodeUnitUnavailable) {
		t.Errorf("create without a primary: got %v, want UNIT_UNAVAILABLE", err)
	}
	got, err := svc.Order(tradeunit.WithConsistency(t.Context(), tradeunit.Eventual), o.Mchid, o.OrderNo)
	if err != nil || got.Read != replica {
		t.Errorf("eventual read: got %+v, %v; want one from the replica", got, err)
	}
}
