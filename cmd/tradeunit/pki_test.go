package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tradeunit/pki"
	"tradeunit/routing"
)

func runCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestPKIInitIssueShowRevoke(t *testing.T) {
	dir := t.TempDir()
	caDir := filepath.Join(dir, "ca")
	if code, _, stderr := runCmd(t, "pki", "init", "--ca", caDir); code != 0 {
		t.Fatalf("init: %d %s", code, stderr)
	}
	if code, _, _ := runCmd(t, "pki", "init", "--ca", caDir); code != 1 {
		t.Fatalf("a second init over the CA exited %d, want 1", code)
	}
	if code, out, stderr := runCmd(t, "pki", "issue", "--ca", caDir, "--role", "admin", "--name", "alice", "--out", dir); code != 0 || !strings.Contains(out, "CN=admin,OU=alice") {
		t.Fatalf("issue: %d %q %s", code, out, stderr)
	}
	cert := filepath.Join(dir, "alice.crt")
	code, out, _ := runCmd(t, "pki", "show", "--cert", cert)
	if code != 0 || !strings.Contains(out, "role admin\nname alice\n") {
		t.Fatalf("show: %d %q", code, out)
	}
	id, err := pki.ReadIdentity(cert)
	if err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCmd(t, "pki", "revoke", "--ca", caDir, "--cert", cert); code != 0 {
		t.Fatalf("revoke: %d %s", code, stderr)
	}
	ca, err := pki.OpenCA(caDir)
	if err != nil {
		t.Fatal(err)
	}
	crl, err := ca.RevocationList()
	if err != nil {
		t.Fatal(err)
	}
	if len(crl.RevokedCertificateEntries) != 1 || crl.RevokedCertificateEntries[0].SerialNumber.Text(16) != id.Serial {
		t.Fatalf("revocation list %+v, want serial %s", crl.RevokedCertificateEntries, id.Serial)
	}
}

func TestPKIRefusesBadInput(t *testing.T) {
	caDir := filepath.Join(t.TempDir(), "ca")
	if _, err := pki.InitCA(caDir, "test"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"pki", "issue", "--ca", caDir, "--role", "root", "--name", "x"}, 1},
		{[]string{"pki", "issue", "--ca", caDir, "--role", "admin"}, 2},
		{[]string{"pki", "issue", "--ca", caDir, "--role", "admin", "--name", "a", "--valid", "-1h"}, 2},
		{[]string{"pki", "revoke", "--ca", caDir}, 2},
		{[]string{"pki", "revoke", "--ca", caDir, "--serial", "xyz"}, 1},
		{[]string{"pki", "show"}, 2},
	} {
		if code, _, _ := runCmd(t, tc.args...); code != tc.code {
			t.Errorf("%v exited %d, want %d", tc.args, code, tc.code)
		}
	}
}

// operatorFlags are the --tls-* flags of a new certificate of role named
// name, from a CA of its own: what an operator passes to admin.
func operatorFlags(t *testing.T, role pki.Role, name string) []string {
	t.Helper()
	dir := t.TempDir()
	ca, err := pki.InitCA(filepath.Join(dir, "ca"), "test")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ca.IssueFiles(dir, pki.Request{Role: role, Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return f.Args()
}

// TestAdminNeedsAnOperatorCertificate: nobody changes the routing table
// without a valid admin certificate; a refused change writes nothing; a
// change records the certificate's subject and the reason given.
func TestAdminNeedsAnOperatorCertificate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "routes.json")
	tbl := &routing.Table{Revision: 1, Units: []routing.Unit{
		{ID: 1, LogicAddrs: []string{"127.0.0.1:9001"}, Available: true, AcceptNew: true},
		{ID: 2, LogicAddrs: []string{"127.0.0.1:9002"}, Available: true, AcceptNew: true}}}
	if err := routing.WriteFile(path, tbl); err != nil {
		t.Fatal(err)
	}
	revoked := operatorFlags(t, pki.RoleAdmin, "eve")
	ca, err := pki.OpenCA(filepath.Dir(revoked[1]))
	if err != nil {
		t.Fatal(err)
	}
	id, err := pki.ReadIdentity(revoked[3])
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.Revoke(id.Serial); err != nil {
		t.Fatal(err)
	}
	other := operatorFlags(t, pki.RoleAdmin, "mallory")
	trusted := operatorFlags(t, pki.RoleAdmin, "x")
	other[1], other[7] = trusted[1], trusted[7] // trusts another CA than the one that issued it
	drain := []string{"admin", "unit", "drain", "--unit", "2", "--routes", path}
	for name, flags := range map[string][]string{
		"no certificate":    nil,
		"a proxy's":         operatorFlags(t, pki.RoleProxy, "proxy"),
		"a revoked admin's": revoked,
		"another CA's":      other,
	} {
		code, _, stderr := runCmd(t, append(drain, flags...)...)
		if code == 0 {
			t.Errorf("%s certificate: the change was made", name)
		}
		if !strings.Contains(stderr, "certificate") {
			t.Errorf("%s certificate: the refusal does not say why: %s", name, stderr)
		}
	}
	if data, err := os.ReadFile(path); err != nil || !strings.Contains(string(data), `"revision": 1,`) {
		t.Fatalf("table after refused changes: %s, %v; want revision 1", data, err)
	}
	if code, _, stderr := runCmd(t, append(append(drain, operatorFlags(t, pki.RoleAdmin, "alice")...), "--why", "disk swap")...); code != 0 {
		t.Fatalf("an operator's drain failed: %s", stderr)
	}
	code, out, _ := runCmd(t, append([]string{"admin", "history", "--routes", path, "--json"}, operatorFlags(t, pki.RoleAdmin, "bob")...)...)
	if code != 0 || !strings.Contains(out, `"subject": "CN=admin,OU=alice,O=tradeunit"`) || !strings.Contains(out, `"why": "disk swap"`) {
		t.Fatalf("history (exit %d) does not name the operator's certificate and reason:\n%s", code, out)
	}
}
