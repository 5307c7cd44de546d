package cluster

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"google.golang.org/grpc"

	"tradeunit/pki"
	"tradeunit/routing"
	"tradeunit/rpc"
)

// The cluster's trust material: a CA (Config.CADir, or Dir/pki/ca) and one
// certificate per process in Dir/pki, named by the process's name
// (pki.FilesIn(caDir, Dir/pki, name)). Every internal connection is mutual
// TLS with them unless Config.Plaintext.
type clusterPKI struct {
	ca    *pki.CA
	dir   string    // Dir/pki: the certificates
	admin pki.Files // the operator's: tests and tradeunit dev use it
	keys  *pki.Keys // admin's, for the cluster's own calls (WaitHolding)
}

// AdminName is the name of the operator's certificate (role admin) a
// cluster issues: its files are pki.FilesIn(caDir, Dir/pki, AdminName).
const AdminName = "admin"

// openPKI opens the CA, making it on the first start (a restart reuses it,
// so certificates a test issued stay valid), and issues the operator's
// certificate.
func (c *Cluster) openPKI() error {
	if c.cfg.Plaintext {
		return nil
	}
	caDir := c.cfg.CADir
	if caDir == "" {
		caDir = filepath.Join(c.Dir, "pki", "ca")
	}
	ca, err := pki.OpenCA(caDir)
	if errors.Is(err, fs.ErrNotExist) {
		ca, err = pki.InitCA(caDir, "tradeunit local cluster")
	}
	if err != nil {
		return err
	}
	p := &clusterPKI{ca: ca, dir: filepath.Join(c.Dir, "pki")}
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return err
	}
	if p.admin, err = ca.IssueFiles(p.dir, pki.Request{Role: pki.RoleAdmin, Name: AdminName}); err != nil {
		return err
	}
	if p.keys, err = pki.Load(p.admin); err != nil {
		return err
	}
	c.pki = p
	return nil
}

// issue issues the certificate of the process name with role (replacing
// one a previous start issued), or returns no files in plaintext mode.
func (c *Cluster) issue(role pki.Role, name string) (pki.Files, error) {
	if c.pki == nil {
		return pki.Files{}, nil
	}
	return c.pki.ca.IssueFiles(c.pki.dir, pki.Request{Role: role, Name: name})
}

// routingOptions are how the cluster opens its routing table: etcd over
// mutual TLS with the operator's certificate (etcd's user "admin").
func (c *Cluster) routingOptions() routing.Options {
	opts := routing.DefaultOptions()
	opts.Logger = c.cfg.Logger
	if c.pki != nil {
		opts.TLS = c.pki.keys.ClientTLS()
	}
	return opts
}

// change describes a change the cluster makes to its table, as the
// operator whose certificate it holds.
func (c *Cluster) change(what string) routing.Change {
	ch := routing.Change{Who: "cluster", What: what}
	if c.pki != nil {
		ch.Subject = c.pki.keys.Identity().Subject
	}
	return ch
}

// adminDial are the dial options of the cluster's own calls to its
// services, with the operator's certificate.
func (c *Cluster) adminDial() []grpc.DialOption {
	if c.pki == nil {
		return nil
	}
	return rpc.WithKeys(c.pki.keys)
}

// CA is the cluster's certificate authority (nil with Config.Plaintext):
// tests issue and revoke certificates with it.
func (c *Cluster) CA() *pki.CA {
	if c.pki == nil {
		return nil
	}
	return c.pki.ca
}

// AdminTLS is the operator's certificate files (none with
// Config.Plaintext): pki.FilesIn(CA dir, Dir/pki, "admin").
func (c *Cluster) AdminTLS() pki.Files {
	if c.pki == nil {
		return pki.Files{}
	}
	return c.pki.admin
}
