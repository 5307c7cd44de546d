package unitd_test

import (
	"flag"
	"reflect"
	"strings"
	"testing"
	"time"

	"tradeunit/daemon/unitd"
	"tradeunit/dsn"
)

// TestArgsRoundTrip: the flags the local cluster starts a logic service
// with parse back to the configuration it meant, and a configuration the
// program refuses is refused as flags too.
func TestArgsRoundTrip(t *testing.T) {
	cfg := unitd.DefaultConfig()
	cfg.Service.Unit, cfg.DB = 7, dsn.MustParse("mysql:app@tcp(10.0.0.1:3306)/tradeunit_u7?timeout=2s")
	cfg.Janitor.Retention, cfg.Storage.MaxLag, cfg.Metrics = time.Minute, 2*time.Second, "127.0.0.1:0"
	args := cfg.Args()
	got := unitd.DefaultConfig()
	fs := flag.NewFlagSet("unit", flag.ContinueOnError)
	got.Flags(fs)
	if err := fs.Parse(args[1:]); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, cfg) {
		t.Fatalf("parsed %+v, want %+v (args %v)", got, cfg, args)
	}
	if err := got.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]string{
		{"--unit", "7"}, // no storage
		{"--unit", "7", "--db", "sqlite:a.db", "--routes", "r.json"}, // both
		{"--unit", "0", "--db", "sqlite:a.db"},
		{"--unit", "7", "--db", "sqlite:a.db", "--sequence-block", "0"},
	} {
		c := unitd.DefaultConfig()
		fs := flag.NewFlagSet("unit", flag.ContinueOnError)
		c.Flags(fs)
		if err := fs.Parse(bad); err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err == nil {
			t.Errorf("%s: valid, want refused", strings.Join(bad, " "))
		}
	}
}

// TestParseFlagsValidatesWhatWasParsed: the flags given are what is
// validated (not the defaults they replace).
func TestParseFlagsValidatesWhatWasParsed(t *testing.T) {
	m := unitd.NewMain()
	if err := m.ParseFlags(flag.NewFlagSet("unit", flag.ContinueOnError), []string{"--unit", "7", "--db", "sqlite:a.db"}); err != nil {
		t.Fatalf("good flags: %v", err)
	}
	if m.Config.Service.Unit != 7 {
		t.Fatalf("unit %d, want 7", m.Config.Service.Unit)
	}
	m = unitd.NewMain()
	if err := m.ParseFlags(flag.NewFlagSet("unit", flag.ContinueOnError), []string{"--unit", "7"}); err == nil {
		t.Fatal("no storage: got nil error")
	}
}
