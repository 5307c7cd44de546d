package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"tradeunit/admin"
	"tradeunit/daemon"
	"tradeunit/pki"
	"tradeunit/routing"
	"tradeunit/rpc"
	"tradeunit/secrets"
)

var adminCmd = &command{
	name:  "admin",
	usage: "COMMAND [flags]",
	short: "change the routing table and the storage topology: units, traffic, partitions, canary, storage failover",
}

// adminCommands are added by the admin_*.go files, each with its flags.
func init() {
	adminCmd.sub = []*command{unitsCmd, unitGroupCmd, merchantGroupCmd, historyCmd, initCmd, adminDecodeCmd,
		blacklistCmd, unblacklistCmd, canaryCmd, labelCmd, unitPartitionCmd, merchantPartitionCmd, partitionPolicyCmd,
		failoverCmd, rejoinCmd, zoneGroupCmd, adminDirectoryCmd, reconcileCmd}
}

// adminFlags are the flags every admin command takes.
type adminFlags struct {
	routes  string
	why     string
	secrets string
	// tls is the operator's certificate, for the gRPC calls some commands
	// make to directory shards (backfill, verify); keys is it loaded.
	tls  pki.Files
	keys *pki.Keys
}

// newAdminFlags adds the common admin flags to fs.
func newAdminFlags(fs *flag.FlagSet) *adminFlags {
	f := &adminFlags{routes: defaultRoutes(), secrets: os.Getenv("TRADEUNIT_SECRETS"), tls: defaultAdminTLS()}
	fs.StringVar(&f.routes, "routes", f.routes, "routing table: a file, or etcd://HOST:PORT/PREFIX; the default is the local cluster's (from ./data/"+routesSpecFile+")")
	fs.StringVar(&f.why, "why", f.why, "the reason, recorded with the change beside who made it (from the certificate)")
	fs.StringVar(&f.secrets, "secrets", f.secrets, "secrets file with the storage passwords, mode 600 (default $TRADEUNIT_SECRETS; the TRADEUNIT_PASSWORD_* variables are read too)")
	f.tls.Flags(fs)
	return f
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

// defaultAdminTLS is the operator's certificate of the local cluster that
// tradeunit dev on ./data made, if there is one (as defaultRoutes).
func defaultAdminTLS() pki.Files {
	f := pki.FilesIn(filepath.Join("data", "pki", "ca"), filepath.Join("data", "pki"), "admin")
	if _, err := os.Stat(f.Cert); err != nil {
		return pki.Files{}
	}
	return f
}

// operator loads the operator's certificate and checks that it is valid
// (chains to the CA, not revoked, not expired) and names an admin: nobody
// changes where money goes without one, whatever holds the table.
func (f *adminFlags) operator() (pki.Identity, error) {
	if !f.tls.Enabled() {
		return pki.Identity{}, errors.New("admin needs an operator certificate (role admin): pass --tls-ca, --tls-cert and --tls-key " +
			"(tradeunit pki issue --role admin), or run from the directory where tradeunit dev runs")
	}
	var err error
	if f.keys, err = pki.Load(f.tls); err != nil {
		return pki.Identity{}, err
	}
	id, err := f.keys.VerifyOwn()
	if err != nil {
		return pki.Identity{}, fmt.Errorf("operator certificate: %w", err)
	}
	if id.Role != pki.RoleAdmin {
		return pki.Identity{}, fmt.Errorf("operator certificate names %s, not an admin: admin commands need role admin", id)
	}
	return id, nil
}

// routingOptions are how admin opens the routing table: etcd over mutual
// TLS with the operator's certificate.
func (f *adminFlags) routingOptions() routing.Options {
	return daemon.RoutingOptions(f.keys, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
}

// open opens the routing table and the storage topology for an admin
// command. A table file that does not exist is explained, not just named.
func (f *adminFlags) open(ctx context.Context) (*admin.Admin, func(), error) {
	if !routing.IsEtcd(f.routes) {
		if _, err := os.Stat(f.routes); errors.Is(err, fs.ErrNotExist) {
			return nil, nil, fmt.Errorf("no routing table at %s: pass --routes FILE or etcd://HOST:PORT/PREFIX, or run from the directory where tradeunit dev runs", f.routes)
		}
	}
	operator, err := f.operator()
	if err != nil {
		return nil, nil, err
	}
	opts := f.routingOptions()
	ed, err := routing.Open(ctx, f.routes, opts)
	if err != nil {
		return nil, nil, err
	}
	// Commands that call directory shards (backfill, verify) do so with the
	// operator's certificate.
	pool := rpc.NewPool(rpc.WithKeys(f.keys)...)
	a := &admin.Admin{Routes: ed, Who: operator.Name, Subject: operator.Subject, Why: f.why, Dialer: pool,
		HTTP: daemon.InternalClient(f.keys)}
	closers := []func() error{ed.Close, pool.Close}
	if top, err := routing.OpenTopology(ctx, f.routes, opts); err == nil {
		a.Topology = top
		closers = append(closers, top.Close)
	}
	if a.Passwords, err = secrets.ForProgram(f.secrets); err != nil {
		ed.Close()
		return nil, nil, err
	}
	return a, func() {
		for _, c := range closers {
			c()
		}
	}, nil
}

// adminChange runs one change of the routing table: it adds the common
// flags to fs, parses args, opens the table, makes the change and prints
// what change returns, then the revision it produced.
func adminChange(ctx context.Context, e *env, fs *flag.FlagSet, args []string,
	change func(a *admin.Admin) (*routing.Table, string, error)) error {
	return adminRead(ctx, e, fs, args, func(a *admin.Admin) error {
		t, msg, err := change(a)
		if err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, msg)
		printRevision(e.stdout, t)
		return nil
	})
}

// adminRead runs an admin command: it adds the common flags to fs, parses
// args and opens the table (and the storage topology) for run.
func adminRead(ctx context.Context, e *env, fs *flag.FlagSet, args []string, run func(a *admin.Admin) error) error {
	f := newAdminFlags(fs)
	if err := noArgs(e, fs, args); err != nil {
		return err
	}
	a, done, err := f.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	return run(a)
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
