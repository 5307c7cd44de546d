// Command tradeunit runs every part of a tradeunit cluster: the proxy, the
// logic service of a unit, the health checker, a whole local cluster, and
// the operator's tools. Each subcommand lives in its own file with its usage
// and flags; it only parses and wires: every program's wiring is in its
// daemon package (daemon/proxyd, daemon/healthd, daemon/unitd,
// daemon/directoryd, daemon/lifecycled, daemon/failoverd), shared with
// the local cluster and the tests.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// command is a subcommand, or a group of them. Help is data: every command
// carries its usage and summary, and the help of a group lists its
// subcommands.
type command struct {
	name  string
	usage string // the arguments after the command's path
	short string // one line: what it does
	long  string // optional: more, printed by -h
	// run runs a leaf command; fs is the command's flag set, which knows
	// its usage, for the command to add its flags to and parse.
	run func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error
	sub []*command // a group's subcommands
}

// env is what a running command writes to, and how it was called.
type env struct {
	stdout, stderr io.Writer
	path           string // "tradeunit admin unit add"
}

// errUsage is an error whose message is a usage mistake: the exit status is
// 2, as for a flag the command does not know.
type errUsage struct{ msg string }

func (e errUsage) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error { return errUsage{fmt.Sprintf(format, args...)} }

var root = &command{
	name:  "tradeunit",
	short: "a unitized, highly available order system",
	sub:   []*command{devCmd, proxyCmd, unitCmd, directoryCmd, healthCmd, relayCmd, lifecycleCmd, failoverControllerCmd, queryCmd, adminCmd, pkiCmd, mariadbCmd, benchCmd, decodeCmd},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run runs the command args name and returns the exit status: 0, 1 for a
// failure, 2 for a usage mistake.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c, path, rest, err := find(root, "tradeunit", args)
	e := &env{stdout: stdout, stderr: stderr, path: path}
	if err == nil && c.run == nil {
		// A group: its help, on stdout when asked for, as an error otherwise.
		if len(rest) > 0 && isHelp(rest[0]) {
			printGroup(stdout, c, path)
			return 0
		}
		printGroup(stderr, c, path)
		if len(rest) == 0 {
			return 2
		}
		err = usageErrorf("unknown command %q; run '%s -h' for the list", rest[0], path)
	}
	if err == nil {
		fs := newFlags(c, path)
		err = c.run(ctx, e, fs, rest)
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
	}
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "%s: %v\n", path, err)
	var u errUsage
	if errors.As(err, &u) || isFlagError(err) {
		return 2
	}
	return 1
}

// find walks args down the command tree: it returns the command they name,
// its path and the rest of the arguments.
func find(c *command, path string, args []string) (*command, string, []string, error) {
	for c.run == nil && len(args) > 0 && !isHelp(args[0]) {
		next := lookup(c.sub, args[0])
		if next == nil {
			return c, path, args, nil
		}
		c, path, args = next, path+" "+next.name, args[1:]
	}
	return c, path, args, nil
}

func lookup(cmds []*command, name string) *command {
	for _, c := range cmds {
		if c.name == name {
			return c
		}
	}
	return nil
}

func isHelp(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help" || arg == "help"
}

// isFlagError reports an error of the flag package's parsing (an unknown
// flag, a bad value): a usage mistake.
func isFlagError(err error) bool {
	msg := err.Error()
	return strings.HasPrefix(msg, "flag provided but not defined") || strings.HasPrefix(msg, "invalid value") ||
		strings.HasPrefix(msg, "invalid boolean") || strings.HasPrefix(msg, "bad flag syntax") ||
		strings.HasPrefix(msg, "flag needs an argument")
}

// printGroup prints a group's usage and its subcommands.
func printGroup(w io.Writer, c *command, path string) {
	fmt.Fprintf(w, "%s: %s\n\nUsage:\n", path, c.short)
	for _, s := range c.sub {
		fmt.Fprintf(w, "  %s %s %s\n      %s\n", path, s.name, s.usage, s.short)
	}
	fmt.Fprintf(w, "\nRun '%s COMMAND -h' for a command's flags.\n", path)
}

// newFlags returns the flag set of leaf command c, called as path: -h
// prints its usage line, summary and flags on stdout-like output, and
// parse errors go to stderr with the usage.
func newFlags(c *command, path string) *flag.FlagSet {
	fs := flag.NewFlagSet(path, flag.ContinueOnError)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: %s %s\n\n%s\n", path, c.usage, c.short)
		if c.long != "" {
			fmt.Fprintf(w, "\n%s\n", c.long)
		}
		hasFlags := false
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintln(w, "\nFlags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parse parses args with fs. A request for help prints the usage to stdout
// and returns flag.ErrHelp (exit status 0); a mistake prints it to stderr.
func parse(e *env, fs *flag.FlagSet, args []string) error {
	for _, a := range args {
		if a == "--" {
			break
		}
		if isHelp(a) && a != "help" {
			fs.SetOutput(e.stdout)
			fs.Usage()
			return flag.ErrHelp
		}
	}
	fs.SetOutput(e.stderr)
	return fs.Parse(args)
}

// noArgs parses args with fs and refuses positional arguments.
func noArgs(e *env, fs *flag.FlagSet, args []string) error {
	if err := parse(e, fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErrorf("unexpected arguments %q; run '%s -h'", fs.Args(), e.path)
	}
	return nil
}
