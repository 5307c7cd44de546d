package admin_test

import (
	"context"
	"strings"
	"testing"

	"tradeunit"
	"tradeunit/admin"
	"tradeunit/dsn"
	"tradeunit/routing"
)

// TestFailoverRefusesUnitsItCannotFailOver: a unit without replicas, or
// not on MariaDB, is refused before anything is touched; so is a rejoin
// with nothing fenced. (The failover itself runs against real MariaDB
// servers in package e2e.)
func TestFailoverRefusesUnitsItCannotFailOver(t *testing.T) {
	a, _ := newAdmin(t)
	ctx := context.Background()
	if _, err := a.Topology.Update(ctx, routing.Change{}, func(t *routing.Topology) error {
		t.Set(2, routing.Storage{Primary: dsn.MustParse("mysql:u@tcp(127.0.0.1:1)/tradeunit_u2"), Replicas: []dsn.DSN{sqlite("r.db")}})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	before := a.Topology.Current().Revision
	tests := []struct {
		name string
		run  func() error
		want string
	}{
		{"no replicas", func() error { _, err := a.Failover(ctx, 1, admin.DefaultFailoverOptions()); return err }, "no replica to promote"},
		{"not MariaDB", func() error { _, err := a.Failover(ctx, 2, admin.DefaultFailoverOptions()); return err }, "is not MariaDB"},
		{"unknown unit", func() error { _, err := a.Failover(ctx, 9, admin.DefaultFailoverOptions()); return err }, "no storage in the storage topology"},
		{"rejoin without fenced servers", func() error { _, err := a.Rejoin(ctx, 2, "", admin.DefaultFailoverOptions()); return err }, "no fenced server"},
	}
	for _, tt := range tests {
		err := tt.run()
		if !tradeunit.IsCode(err, tradeunit.CodeParamError) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want a PARAM_ERROR saying %q", tt.name, err, tt.want)
		}
	}
	if got := a.Topology.Current().Revision; got != before {
		t.Errorf("storage topology revision: got %d, want %d (unchanged)", got, before)
	}
}
