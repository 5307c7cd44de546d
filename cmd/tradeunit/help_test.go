package main

import (
	"bytes"
	"context"
	"flag"
	"reflect"
	"strings"
	"testing"

	"tradeunit/daemon/directoryd"
	"tradeunit/daemon/healthd"
	"tradeunit/daemon/proxyd"
	"tradeunit/daemon/unitd"
)

// TestEveryCommandHelps walks the command tree: -h and --help on every
// command and group exit 0 and print a usage line naming the command by the
// path it was called with; a group lists its subcommands; a group called
// with nothing, or with an unknown command, exits 2 and says what to do.
func TestEveryCommandHelps(t *testing.T) {
	var walk func(c *command, path []string)
	walk = func(c *command, path []string) {
		name := strings.Join(append([]string{"tradeunit"}, path...), " ")
		for _, flag := range []string{"-h", "--help"} {
			var out, errOut bytes.Buffer
			code := run(context.Background(), append(append([]string{}, path...), flag), &out, &errOut)
			if code != 0 {
				t.Errorf("%s %s: exit %d, want 0; stderr:\n%s", name, flag, code, errOut.String())
			}
			want := "Usage: " + name + " "
			if c.run == nil {
				want = name + ": "
			}
			if !strings.HasPrefix(out.String(), want) {
				t.Errorf("%s %s: stdout starts %.80q, want %q", name, flag, out.String(), want)
			}
			for _, s := range c.sub {
				if !strings.Contains(out.String(), "  "+name+" "+s.name+" ") {
					t.Errorf("%s %s does not list %s", name, flag, s.name)
				}
			}
		}
		if c.run == nil && len(path) > 0 {
			var out, errOut bytes.Buffer
			if code := run(context.Background(), path, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "Usage:") {
				t.Errorf("%s alone: exit %d, stderr %.80q; want 2 and the group's usage", name, code, errOut.String())
			}
			code := run(context.Background(), append(append([]string{}, path...), "nonsense"), &out, &errOut)
			if code != 2 || !strings.Contains(errOut.String(), "unknown command \"nonsense\"") || !strings.Contains(errOut.String(), name+" -h") {
				t.Errorf("%s nonsense: exit %d, stderr %q; want 2 and a pointer to %s -h", name, code, errOut.String(), name)
			}
		}
		for _, s := range c.sub {
			walk(s, append(append([]string{}, path...), s.name))
		}
	}
	walk(root, nil)
}

// TestUnknownFlagIsAUsageError: a mistyped flag exits 2 and names it.
func TestUnknownFlagIsAUsageError(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"proxy", "--nonsense"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "nonsense") {
		t.Fatalf("exit %d, stderr %q; want 2 naming the flag", code, errOut.String())
	}
}

// TestAdminOutsideTheDevDirectory: an admin command that finds no routing
// table says how to name one.
func TestAdminOutsideTheDevDirectory(t *testing.T) {
	t.Chdir(t.TempDir())
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"admin", "units"}, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "pass --routes") || !strings.Contains(errOut.String(), "tradeunit dev") {
		t.Fatalf("exit %d, stderr %q; want 1 and what to do", code, errOut.String())
	}
}

// TestDevRunsTheShippedPrograms: tradeunit dev's proxy and health checker
// have the configuration tradeunit proxy and tradeunit health start with
// (server timeouts, limits, selection and probing), but for their ports.
func TestDevRunsTheShippedPrograms(t *testing.T) {
	cfg, _ := devFlags(flag.NewFlagSet("dev", flag.ContinueOnError), "tradeunit")
	wantProxy := proxyd.DefaultConfig()
	wantProxy.Listen = cfg.Proxy.Listen
	if !reflect.DeepEqual(cfg.Proxy, wantProxy) {
		t.Errorf("dev's proxy: got %+v, want tradeunit proxy's %+v", cfg.Proxy, wantProxy)
	}
	wantHealth := healthd.DefaultConfig()
	if cfg.Health == nil || !reflect.DeepEqual(*cfg.Health, wantHealth) {
		t.Errorf("dev's checker: got %+v, want tradeunit health's %+v", cfg.Health, wantHealth)
	}
	if !reflect.DeepEqual(cfg.Unit, unitd.DefaultConfig()) {
		t.Errorf("dev's logic services: got %+v, want tradeunit unit's %+v", cfg.Unit, unitd.DefaultConfig())
	}
	if !reflect.DeepEqual(cfg.Directory, directoryd.DefaultConfig()) {
		t.Errorf("dev's directory shards: got %+v, want tradeunit directory's %+v", cfg.Directory, directoryd.DefaultConfig())
	}
}
