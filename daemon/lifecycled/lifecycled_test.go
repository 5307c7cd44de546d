package lifecycled_test

import (
	"context"
	"flag"
	"log/slog"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"tradeunit/daemon/lifecycled"
	"tradeunit/routing"
)

// TestArgsRoundTrip: the flags of a configuration parse back to it, and
// what the program refuses is refused as flags too.
func TestArgsRoundTrip(t *testing.T) {
	cfg := lifecycled.DefaultConfig()
	cfg.Routes, cfg.Holder, cfg.Metrics = "routes.json", "ctl-1", "127.0.0.1:0"
	l := &cfg.Lifecycle
	l.Every, l.MaxOrders, l.MaxBytes, l.MaxAge, l.MinHot = time.Second, 10, 20, time.Hour, 2
	l.CoolBelow, l.CoolAfter, l.FreshStorage, l.Off = 0.5, time.Minute, "mysql:tradeunit@tcp(db:3306)/tradeunit_u{unit}", true
	args := cfg.Args()
	got := lifecycled.DefaultConfig()
	fs := flag.NewFlagSet("lifecycle", flag.ContinueOnError)
	got.Flags(fs)
	if err := fs.Parse(args[1:]); err != nil {
		t.Fatal(err)
	}
	if err := got.Validate(); err != nil {
		t.Fatal(err)
	}
	got.Lifecycle.Now, cfg.Lifecycle.Now = nil, nil // funcs never compare equal
	if !reflect.DeepEqual(got, cfg) {
		t.Fatalf("parsed %+v, want %+v (args %v)", got, cfg, args)
	}
	for _, bad := range [][]string{
		{}, // no table
		{"--routes", "r.json", "--every", "0s"},
		{"--routes", "r.json", "--min-hot", "0"},
		{"--routes", "r.json", "--fresh-storage", "sqlite:one.db"},
		{"--routes", "r.json", "--holder", ""},
	} {
		c := lifecycled.DefaultConfig()
		fs := flag.NewFlagSet("lifecycle", flag.ContinueOnError)
		c.Flags(fs)
		if err := fs.Parse(bad); err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err == nil {
			t.Errorf("%s: valid, want refused", strings.Join(bad, " "))
		}
	}
}

// TestMainRuns: the program opens a table file, becomes the active
// controller and runs rounds, and Close stops it.
func TestMainRuns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "routes.json")
	if err := routing.WriteFile(path, &routing.Table{Revision: 1}); err != nil {
		t.Fatal(err)
	}
	if err := routing.WriteTopologyFile(routing.TopologyPath(path), &routing.Topology{Revision: 1}); err != nil {
		t.Fatal(err)
	}
	m := lifecycled.NewMain()
	m.Logger = slog.New(slog.DiscardHandler)
	m.Config.Routes, m.Config.Lifecycle.Every = path, 10*time.Millisecond
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for s := m.Controller.Status(); !s.Active || s.Rounds < 2; s = m.Controller.Status() {
		if time.Now().After(deadline) {
			t.Fatalf("controller %+v, want active with rounds", s)
		}
		time.Sleep(5 * time.Millisecond) // a poll interval
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if m.Controller.Status().Active {
		t.Fatal("still active after Close")
	}
}
