package e2e

import (
	"path/filepath"
	"testing"

	"google.golang.org/grpc"

	"tradeunit/cluster"
	"tradeunit/pki"
	"tradeunit/rpc"
)

// issueTLS issues a certificate of role named name with the cluster's CA,
// in its pki directory.
func issueTLS(t *testing.T, c *cluster.Cluster, role pki.Role, name string) pki.Files {
	t.Helper()
	files, err := c.CA().IssueFiles(filepath.Join(c.Dir, "pki"), pki.Request{Role: role, Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// dialAs returns the dial options of a client with files' certificate.
func dialAs(t *testing.T, files pki.Files) []grpc.DialOption {
	t.Helper()
	keys, err := pki.Load(files)
	if err != nil {
		t.Fatal(err)
	}
	return rpc.WithKeys(keys)
}

// proxyDial are the dial options of a test that calls units directly, as
// the proxy does.
func proxyDial(t *testing.T, c *cluster.Cluster) []grpc.DialOption {
	t.Helper()
	return dialAs(t, issueTLS(t, c, pki.RoleProxy, "test-proxy"))
}

// tlsArgs are the --tls-* flags of the certificate name of a tradeunit
// dev running in dir.
func tlsArgs(dir, name string) []string {
	return pki.FilesIn(filepath.Join(dir, "pki", "ca"), filepath.Join(dir, "pki"), name).Args()
}

// operatorArgs are the --tls-* flags of an operator's certificate for
// tests whose processes run without certificates (the ha clusters): admin
// needs one all the same. The CA is made in dir/pki/ca on the first call.
func operatorArgs(t *testing.T, dir string) []string {
	t.Helper()
	caDir := filepath.Join(dir, "pki", "ca")
	ca, err := pki.OpenCA(caDir)
	if err != nil {
		if ca, err = pki.InitCA(caDir, "e2e operators"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ca.IssueFiles(filepath.Join(dir, "pki"), pki.Request{Role: pki.RoleAdmin, Name: cluster.AdminName}); err != nil {
		t.Fatal(err)
	}
	return tlsArgs(dir, cluster.AdminName)
}

// adminArgs are the --tls-* flags of the cluster's operator certificate.
func adminArgs(c *cluster.Cluster) []string {
	return c.AdminTLS().Args()
}
