package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
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
