// Command tradeunit runs every part of a tradeunit cluster: the proxy, the
// logic service of a unit, a whole local cluster, and tools. Each subcommand
// lives in its own file and only wires packages together.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// command is one subcommand.
type command struct {
	name  string
	usage string // one line: arguments
	short string // one line: what it does
	run   func(ctx context.Context, args []string, stdout io.Writer) error
}

var commands = []*command{devCmd, proxyCmd, unitCmd, healthCmd, adminCmd, mariadbCmd, benchCmd, decodeCmd}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		return 2
	}
	for _, c := range commands {
		if c.name == args[0] {
			err := c.run(ctx, args[1:], stdout)
			switch {
			case err == nil:
				return 0
			case errors.Is(err, flag.ErrHelp):
				return 2
			}
			fmt.Fprintf(stderr, "tradeunit %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "tradeunit: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "tradeunit: a unitized, highly available order system\n\nUsage:")
	for _, c := range commands {
		fmt.Fprintf(w, "  tradeunit %-8s %s\n      %s\n", c.name, c.usage, c.short)
	}
	fmt.Fprintln(w, "\nRun 'tradeunit COMMAND -h' for a command's flags.")
}

// newFlags returns a flag set for c whose -h prints c's usage.
func newFlags(c *command) *flag.FlagSet {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: tradeunit %s %s\n%s\n\nFlags:\n", c.name, c.usage, c.short)
		fs.PrintDefaults()
	}
	return fs
}

// logLevelFlag adds --log-level to fs and returns a function that builds the
// logger once flags are parsed.
func logLevelFlag(fs *flag.FlagSet) func() *slog.Logger {
	level := fs.String("log-level", "info", "log level: debug, info, warn or error")
	return func() *slog.Logger {
		var l slog.Level
		if err := l.UnmarshalText([]byte(*level)); err != nil {
			l = slog.LevelInfo
		}
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
	}
}
