package dirstore

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"log"
	"testing"

	"github.com/go-sql-driver/mysql"

	"tradeunit"
	"tradeunit/store/storetest"
)

// TestCommitLostFailsEveryResult: when the connection dies while COMMIT
// is on its way, every valid entry of the Put is told its outcome is
// unknown (it may have committed), an invalid one is still PARAM_ERROR,
// and a Put after it works. The test's database is its own, so killing
// every connection to it kills only the Store's.
func TestCommitLostFailsEveryResult(t *testing.T) {
	d := storetest.NewMySQLDatabase(t)
	ctx := context.Background()
	mysql.SetLogger(log.New(io.Discard, "", 0)) // the killed connection is the point
	s, err := Open(ctx, d, storetest.TestPasswords())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cfg, err := d.MySQLConfig(storetest.TestPasswords())
	if err != nil {
		t.Fatal(err)
	}
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	s.db.BeforeCommit = func() {
		rows, err := admin.Query("SELECT id FROM information_schema.processlist WHERE db = ? AND id <> CONNECTION_ID()", d.Database)
		if err != nil {
			t.Error(err)
			return
		}
		var ids []int64
		for rows.Next() {
			var id int64
			rows.Scan(&id)
			ids = append(ids, id)
		}
		rows.Close()
		for _, id := range ids {
			admin.Exec("KILL CONNECTION ?", id)
		}
	}
	valid := func(v string) *tradeunit.DirectoryEntry {
		return &tradeunit.DirectoryEntry{Key: tradeunit.MerchantKey{Mchid: "1900000001", Kind: tradeunit.KeyOrder, Value: v},
			State: tradeunit.EntryPending, Attempt: tradeunit.Attempt{Unit: 1, ID: 9}, Version: 1}
	}
	invalid := valid("otn-invalid")
	invalid.Version = 0
	rs := s.Put(ctx, []*tradeunit.DirectoryEntry{valid("otn-000001"), invalid, valid("otn-000002")})
	for _, i := range []int{0, 2} {
		if !tradeunit.OutcomeUnknown(rs[i].Err) || !errors.Is(rs[i].Err, tradeunit.ErrOutcomeUnknown) ||
			!tradeunit.IsCode(rs[i].Err, tradeunit.CodeUnitUnavailable) || rs[i].Entry != nil {
			t.Errorf("result %d: got %+v, %v; want UNIT_UNAVAILABLE with the outcome unknown", i, rs[i].Entry, rs[i].Err)
		}
	}
	if !tradeunit.IsCode(rs[1].Err, tradeunit.CodeParamError) {
		t.Errorf("the invalid entry: got %v, want PARAM_ERROR", rs[1].Err)
	}
	s.db.BeforeCommit = nil
	if r := s.Put(ctx, []*tradeunit.DirectoryEntry{valid("otn-000003")})[0]; r.Err != nil {
		t.Errorf("Put after the lost commit: %v", r.Err)
	}
}
