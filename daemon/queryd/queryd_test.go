package queryd_test

import (
	"flag"
	"reflect"
	"strings"
	"testing"

	"tradeunit/daemon/queryd"
)

// TestArgsRoundTrip: the flags of a consumer parse back to its
// configuration, and what the program refuses is refused as flags too.
func TestArgsRoundTrip(t *testing.T) {
	cfg := queryd.DefaultConfig()
	cfg.Store, cfg.Durable, cfg.Batch, cfg.Bus.URL = "postgres://q@10.0.0.2:5432/q", "store-2", 64, "nats://10.0.0.1:4222"
	args := cfg.Args()
	got := queryd.DefaultConfig()
	fs := flag.NewFlagSet("query apply", flag.ContinueOnError)
	got.Flags(fs)
	if err := fs.Parse(args[2:]); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, cfg) {
		t.Fatalf("parsed %+v, want %+v (args %v)", got, cfg, args)
	}
	if err := got.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]string{
		{}, // no store
		{"--store", "sqlite:q.db", "--durable", ""},
		{"--store", "sqlite:q.db", "--batch", "0"},
		{"--store", "sqlite:q.db", "--open-timeout", "-1s"},
	} {
		c := queryd.DefaultConfig()
		fs := flag.NewFlagSet("query apply", flag.ContinueOnError)
		c.Flags(fs)
		if err := fs.Parse(bad); err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err == nil {
			t.Errorf("%s: valid, want refused", strings.Join(bad, " "))
		}
	}
}
