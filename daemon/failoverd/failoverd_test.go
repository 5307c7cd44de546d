package failoverd_test

import (
	"context"
	"flag"
	"log/slog"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"tradeunit/daemon/failoverd"
	"tradeunit/routing"
)

// TestArgsRoundTrip: the flags of a configuration parse back to it, and
// what the program refuses is refused as flags too.
func TestArgsRoundTrip(t *testing.T) {
	cfg := failoverd.DefaultConfig()
	cfg.Routes, cfg.Holder, cfg.Metrics, cfg.Secrets = "routes.json", "ctl-1", "127.0.0.1:0", "secrets.json"
	f := &cfg.Failover
	f.Every, f.FailAfter, f.CheckTimeout, f.HealthURL = 100*time.Millisecond, 5, 300*time.Millisecond, "http://127.0.0.1:8081"
	f.MinInterval, f.MaxPerHour, f.Off, f.Rejoin, f.AdminUser, f.ReplUser = 5*time.Minute, 2, true, true, "admin", "replica"
	args := cfg.Args()
	got := failoverd.DefaultConfig()
	fs := flag.NewFlagSet("failover-controller", flag.ContinueOnError)
	got.Flags(fs)
	if err := fs.Parse(args[1:]); err != nil {
		t.Fatal(err)
	}
	if err := got.Validate(); err != nil {
		t.Fatal(err)
	}
	got.Failover.Now, cfg.Failover.Now = nil, nil // funcs never compare equal
	if !reflect.DeepEqual(got, cfg) {
		t.Fatalf("parsed %+v, want %+v (args %v)", got, cfg, args)
	}
	for _, bad := range [][]string{
		{}, // no table
		{"--routes", "r.json", "--every", "0s"},
		{"--routes", "r.json", "--fail-after", "0"},
		{"--routes", "r.json", "--max-per-hour", "0"},
		{"--routes", "r.json", "--admin-user", ""},
		{"--routes", "r.json", "--holder", ""},
	} {
		c := failoverd.DefaultConfig()
		fs := flag.NewFlagSet("failover-controller", flag.ContinueOnError)
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
// controller and runs rounds; a second one stands by until the first
// closes.
func TestMainRuns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "routes.json")
	if err := routing.WriteFile(path, &routing.Table{Revision: 1}); err != nil {
		t.Fatal(err)
	}
	if err := routing.WriteTopologyFile(routing.TopologyPath(path), &routing.Topology{Revision: 1}); err != nil {
		t.Fatal(err)
	}
	start := func() *failoverd.Main {
		m := failoverd.NewMain()
		m.Logger = slog.New(slog.DiscardHandler)
		m.Config.Routes, m.Config.Failover.Every, m.Config.Failover.LockRetry = path, 10*time.Millisecond, 10*time.Millisecond
		if err := m.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		return m
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !ok(); {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond) // a poll interval
		}
	}
	first := start()
	waitFor("the first controller active with rounds", func() bool { s := first.Controller.Status(); return s.Active && s.Rounds >= 2 })
	second := start()
	defer second.Close()
	// The second stands by while the first holds the lock: it has tried
	// it (its lock retry is 10ms) many times by the time the first has run
	// five more rounds.
	r := first.Controller.Status().Rounds
	waitFor("five more rounds of the first", func() bool { return first.Controller.Status().Rounds >= r+5 })
	if s := second.Controller.Status(); s.Active || s.Rounds > 0 {
		t.Fatalf("second controller %+v while the first is active, want standing by", s)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if first.Controller.Status().Active {
		t.Fatal("still active after Close")
	}
	waitFor("the second controller taking over", func() bool { s := second.Controller.Status(); return s.Active && s.Rounds >= 1 })
}
