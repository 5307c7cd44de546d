package routing

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// EtcdAuth is who may do what in the etcd holding the routing table, once
// etcd authenticates clients by certificate (--client-cert-auth, which
// takes a certificate's common name, our role, as the etcd user).
type EtcdAuth struct {
	// Writers may change the table and the storage topology: operators
	// (role admin) only. Every other role only reads them.
	Writers []string
	Readers []string
	// WholeKeyspace grants the roles every key instead of the spec's
	// prefix: for an etcd that holds several tables (tests).
	WholeKeyspace bool
}

// DefaultEtcdAuth: operators write; the proxy, units, directory shards,
// the checker, relays and the query consumer read.
func DefaultEtcdAuth() EtcdAuth {
	return EtcdAuth{Writers: []string{"admin"}, Readers: []string{"proxy", "unit", "directory", "checker", "relay", "query"}}
}

// The etcd roles SetupEtcdAuth grants.
const (
	etcdReadRole  = "tradeunit-read"
	etcdWriteRole = "tradeunit-write"
)

// SetupEtcdAuth turns on etcd's authentication for spec's prefix, as an
// operator does once per etcd cluster (README: the same with etcdctl): a
// root user with rootPassword, a read role and a read-write role on the
// prefix, one user per tradeunit role (with a random password nobody
// knows: they log in by certificate only), then auth enable. tlsConfig is
// a client certificate the etcd trusts.
func SetupEtcdAuth(ctx context.Context, spec string, tlsConfig *tls.Config, auth EtcdAuth, rootPassword string) error {
	c, prefix, err := dialEtcd(spec, tlsConfig)
	if err != nil {
		return err
	}
	defer c.Close()
	from, end := prefix+"/", clientv3.GetPrefixRangeEnd(prefix+"/")
	if auth.WholeKeyspace {
		from, end = "\x00", "\x00"
	}
	steps := []func() error{
		func() error { _, err := c.UserAdd(ctx, "root", rootPassword); return err },
		func() error { _, err := c.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := c.RoleAdd(ctx, etcdReadRole); return err },
		func() error {
			_, err := c.RoleGrantPermission(ctx, etcdReadRole, from, end, clientv3.PermissionType(clientv3.PermRead))
			return err
		},
		func() error { _, err := c.RoleAdd(ctx, etcdWriteRole); return err },
		func() error {
			_, err := c.RoleGrantPermission(ctx, etcdWriteRole, from, end, clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
	}
	for _, u := range auth.Writers {
		steps = append(steps, addUser(ctx, c, u, etcdWriteRole))
	}
	for _, u := range auth.Readers {
		steps = append(steps, addUser(ctx, c, u, etcdReadRole))
	}
	steps = append(steps, func() error { _, err := c.AuthEnable(ctx); return err })
	for _, step := range steps {
		if err := step(); err != nil {
			return fmt.Errorf("etcd auth setup: %w", err)
		}
	}
	return nil
}

func addUser(ctx context.Context, c *clientv3.Client, user, role string) func() error {
	return func() error {
		pw := make([]byte, 16)
		rand.Read(pw)
		if _, err := c.UserAdd(ctx, user, hex.EncodeToString(pw)); err != nil {
			return err
		}
		_, err := c.UserGrantRole(ctx, user, role)
		return err
	}
}
