package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"tradeunit/pki"
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
