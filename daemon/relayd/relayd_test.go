package relayd_test

import (
	"flag"
	"reflect"
	"strings"
	"testing"
	"time"

	"tradeunit/daemon/relayd"
	"tradeunit/dsn"
)

// TestArgsRoundTrip: the flags the local cluster starts a relay with parse
// back to the configuration it meant, and what the program refuses is
// refused as flags too.
func TestArgsRoundTrip(t *testing.T) {
	cfg := relayd.DefaultConfig()
	cfg.Relay.Unit, cfg.DB = 7, dsn.MustParse("sqlite:unit-7.db")
	cfg.Relay.Holder, cfg.Relay.LeaseTTL, cfg.Bus.URL, cfg.Bus.Stream = "relay-7-1", 2*time.Second, "nats://10.0.0.1:4222", "EV"
	cfg.Metrics = "127.0.0.1:0"
	args := cfg.Args()
	got := relayd.DefaultConfig()
	fs := flag.NewFlagSet("relay", flag.ContinueOnError)
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
		{"--unit", "0", "--db", "sqlite:a.db"},
		{"--unit", "7", "--db", "sqlite:a.db", "--gap-settle", "10ms"}, // faster than MySQL's view refreshes
		{"--unit", "7", "--db", "sqlite:a.db", "--batch", "0"},
		{"--unit", "7", "--db", "sqlite:a.db", "--nats-url", ""},
	} {
		c := relayd.DefaultConfig()
		fs := flag.NewFlagSet("relay", flag.ContinueOnError)
		c.Flags(fs)
		if err := fs.Parse(bad); err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err == nil {
			t.Errorf("%s: valid, want refused", strings.Join(bad, " "))
		}
	}
}
