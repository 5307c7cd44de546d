package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"tradeunit/admin"
	"tradeunit/routing"
)

var adminCmd = &command{
	name:  "admin",
	usage: "SUBCOMMAND [flags]",
	short: "change the routing table: blacklist units, canary shares, merchant partitions, partition policy, storage failover",
}

// adminCommands are the subcommands of tradeunit admin; each lives in an
// admin_*.go file with its flags.
var adminCommands []*command

func init() { adminCmd.run = runAdmin }

func runAdmin(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) > 0 {
		for _, c := range adminCommands {
			if c.name == args[0] {
				return c.run(ctx, args[1:], stdout)
			}
		}
	}
	w := flag.CommandLine.Output()
	fmt.Fprintln(w, "Usage: tradeunit admin SUBCOMMAND [flags]\n\nSubcommands (each takes --routes FILE or etcd://HOST:PORT/PREFIX; default: the local cluster's table):")
	for _, c := range adminCommands {
		fmt.Fprintf(w, "  %-19s %s\n  %-19s   %s\n", c.name, c.usage, "", c.short)
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		return flag.ErrHelp
	}
	return fmt.Errorf("unknown admin subcommand %q", args[0])
}

// adminFlags are the flags every admin subcommand takes.
type adminFlags struct {
	routes *string
	who    *string
}

func newAdminFlags(c *command) (*flag.FlagSet, adminFlags) {
	fs := newFlags(c)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: tradeunit admin %s %s\n%s\n\nFlags:\n", c.name, c.usage, c.short)
		fs.PrintDefaults()
	}
	who := os.Getenv("USER")
	if who == "" {
		who = "admin"
	}
	return fs, adminFlags{
		routes: fs.String("routes", defaultRoutes(), "routing table: a file, or etcd://HOST:PORT/PREFIX (default: the local cluster's, from ./data/"+routesSpecFile+")"),
		who:    fs.String("who", who, "recorded with the change"),
	}
}

// routesSpecFile, in a local cluster's data directory, names where its
// routing table lives (a file or etcd), so that admin commands find it.
const routesSpecFile = "routes.spec"

// defaultRoutes is the local cluster's routing table, as tradeunit dev on
// ./data recorded it.
func defaultRoutes() string {
	if data, err := os.ReadFile(filepath.Join("data", routesSpecFile)); err == nil {
		if spec := strings.TrimSpace(string(data)); spec != "" {
			return spec
		}
	}
	return "./data/routes.json"
}

// open opens the routing table for an admin command.
func (f adminFlags) open(ctx context.Context) (*admin.Admin, func(), error) {
	ed, err := routing.Open(ctx, *f.routes, routing.FileOptions{})
	if err != nil {
		return nil, nil, err
	}
	return &admin.Admin{Routes: ed, Who: *f.who}, func() { ed.Close() }, nil
}

// printRevision says which revision a change produced and when proxies
// honour it.
func printRevision(w io.Writer, t *routing.Table) {
	fmt.Fprintf(w, "routing table revision %d → %d; every proxy follows it within a second\n", t.Revision-1, t.Revision)
}

// parseLabel splits KEY=VALUE.
func parseLabel(s string) (key, value string, err error) {
	key, value, ok := strings.Cut(s, "=")
	if !ok || key == "" {
		return "", "", fmt.Errorf("label %q must be KEY=VALUE", s)
	}
	return key, value, nil
}
