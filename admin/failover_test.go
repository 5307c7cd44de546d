package admin_test

import (
	"context"
	"strings"
	"testing"

	"tradeunit"
	"tradeunit/admin"
	"tradeunit/routing"
)

// TestFailoverRefusesUnitsItCannotFailOver: a unit without replicas, or
// not on MariaDB, is refused before anything is touched; so is a rejoin
// with nothing fenced. (The failover itself runs against real MariaDB
// servers in package e2e.)
func TestFailoverRefusesUnitsItCannotFailOver(t *testing.T) {
	a, _ := newAdmin(t)
	ctx := context.Background()
	if _, err := a.Routes.Update(ctx, routing.Change{}, func(t *routing.Table) error {
		u, _ := t.Unit(2)
		u.Storage = routing.Storage{Primary: "mysql:u:p@tcp(127.0.0.1:1)/tradeunit_u2", Replicas: []string{"sqlite:r.db"}}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	before := a.Routes.Current().Revision
	tests := []struct {
		name string
		run  func() error
		want string
	}{
		{"no replicas", func() error { _, err := a.Failover(ctx, 1, admin.FailoverOptions{}); return err }, "no replica to promote"},
		{"not MariaDB", func() error { _, err := a.Failover(ctx, 2, admin.FailoverOptions{}); return err }, "is not MariaDB"},
		{"unknown unit", func() error { _, err := a.Failover(ctx, 9, admin.FailoverOptions{}); return err }, "not in the routing table"},
		{"rejoin without fenced servers", func() error { _, err := a.Rejoin(ctx, 2, "", admin.FailoverOptions{}); return err }, "no fenced server"},
	}
	for _, tt := range tests {
		err := tt.run()
		if !tradeunit.IsCode(err, tradeunit.CodeParamError) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want a PARAM_ERROR saying %q", tt.name, err, tt.want)
		}
		if strings.Contains(err.Error(), ":p@") {
			t.Errorf("%s: the error shows a password: %v", tt.name, err)
		}
	}
	if got := a.Routes.Current().Revision; got != before {
		t.Errorf("routing table revision: got %d, want %d (unchanged)", got, before)
	}
}
