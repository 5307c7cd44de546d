package pki_test

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"tradeunit/pki"
)

// testCA makes a CA in a temporary directory.
func testCA(t *testing.T) *pki.CA {
	t.Helper()
	ca, err := pki.InitCA(filepath.Join(t.TempDir(), "ca"), "test CA")
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func issue(t *testing.T, ca *pki.CA, dir string, role pki.Role, name string) pki.Files {
	t.Helper()
	f, err := ca.IssueFiles(dir, pki.Request{Role: role, Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func load(t *testing.T, f pki.Files) *pki.Keys {
	t.Helper()
	k, err := pki.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// serve accepts mutual-TLS connections with keys and reports each
// handshake's peer (or error) on the returned channel.
func serve(t *testing.T, keys *pki.Keys) (string, <-chan error) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", keys.ServerTLS())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	results := make(chan error, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				err := c.(*tls.Conn).Handshake()
				if err == nil {
					_, err = pki.PeerIdentity(c.(*tls.Conn).ConnectionState())
					c.Write([]byte("ok"))
				}
				results <- err
			}()
		}
	}()
	return ln.Addr().String(), results
}

// dial handshakes with addr as cfg and reads the server's answer, so that
// a refusal of the client's certificate (sent after the client's own
// handshake finished, in TLS 1.3) is seen.
func dial(addr string, cfg *tls.Config) error {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 2)
	_, err = io.ReadFull(c, buf)
	return err
}

func TestMutualTLSRefusesWhoDoesNotBelong(t *testing.T) {
	ca := testCA(t)
	dir := t.TempDir()
	server := load(t, issue(t, ca, dir, pki.RoleUnit, "unit-1"))
	addr, results := serve(t, server)

	proxy := load(t, issue(t, ca, dir, pki.RoleProxy, "proxy"))
	revokedFiles := issue(t, ca, dir, pki.RoleProxy, "revoked")
	revoked := load(t, revokedFiles)
	other := load(t, issue(t, testCA(t), t.TempDir(), pki.RoleProxy, "proxy"))
	cert, err := tls.LoadX509KeyPair(revokedFiles.Cert, revokedFiles.Key)
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.Revoke(cert.Leaf.SerialNumber.Text(16)); err != nil {
		t.Fatal(err)
	}
	// The server reads the new revocation list at its next check.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		dial(addr, revoked.ClientTLS())
		if errors.Is(<-results, pki.ErrRevoked) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a revoked certificate is still accepted after 5 s")
		}
	}

	noCert := proxy.ClientTLS()
	noCert.GetClientCertificate = nil
	cases := []struct {
		name   string
		client *tls.Config
		ok     bool
	}{
		{"proxy of the CA", proxy.ClientTLS(), true},
		{"no certificate", noCert, false},
		{"another CA's certificate", other.ClientTLS(), false},
		{"revoked certificate", revoked.ClientTLS(), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clientErr := dial(addr, tc.client)
			serverErr := <-results
			if tc.ok && (clientErr != nil || serverErr != nil) {
				t.Fatalf("refused: client %v, server %v", clientErr, serverErr)
			}
			if !tc.ok && (clientErr == nil || serverErr == nil) {
				t.Fatalf("accepted: client %v, server %v", clientErr, serverErr)
			}
		})
	}
}

func TestClientRefusesAServerOfAnotherCA(t *testing.T) {
	ca := testCA(t)
	impostor := load(t, issue(t, testCA(t), t.TempDir(), pki.RoleUnit, "unit-1"))
	addr, results := serve(t, impostor)
	client := load(t, issue(t, ca, t.TempDir(), pki.RoleProxy, "proxy"))
	if err := dial(addr, client.ClientTLS()); err == nil {
		t.Fatal("the client accepted a server of another CA")
	}
	<-results
}

func TestRotationTakesEffectWithoutRestart(t *testing.T) {
	ca := testCA(t)
	dir := t.TempDir()
	serverFiles := issue(t, ca, dir, pki.RoleUnit, "unit-1")
	server := load(t, serverFiles)
	addr, results := serve(t, server)
	client := load(t, issue(t, ca, dir, pki.RoleProxy, "proxy"))
	first := server.Identity().Serial

	if _, err := ca.IssueFiles(dir, pki.Request{Role: pki.RoleUnit, Name: "unit-1"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for server.Identity().Serial == first {
		if time.Now().After(deadline) {
			t.Fatal("the server never loaded its new certificate")
		}
		if err := dial(addr, client.ClientTLS()); err != nil {
			t.Fatalf("a handshake failed during rotation: %v", err)
		}
		if err := <-results; err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n, err := server.Reloads(); n != 1 || err != nil {
		t.Fatalf("reloads %d, %v; want 1, nil", n, err)
	}
}

func TestAHalfWrittenRotationKeepsTheLastGoodKeys(t *testing.T) {
	ca := testCA(t)
	dir := t.TempDir()
	files := issue(t, ca, dir, pki.RoleUnit, "unit-1")
	keys := load(t, files)
	serial := keys.Identity().Serial
	next, err := ca.Issue(pki.Request{Role: pki.RoleUnit, Name: "unit-1"})
	if err != nil {
		t.Fatal(err)
	}
	// Only the certificate is written: it does not match the key.
	if err := os.WriteFile(files.Cert, next.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		keys.ServerTLS().GetConfigForClient(nil)
		if _, err := keys.Reloads(); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the mismatched pair was never tried")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if keys.Identity().Serial != serial {
		t.Fatal("a mismatched certificate replaced the good one")
	}
}

func TestIssueRefusesBadRequests(t *testing.T) {
	ca := testCA(t)
	for _, r := range []pki.Request{
		{Role: "root", Name: "x"},
		{Role: pki.RoleAdmin, Name: ""},
		{Role: pki.RoleAdmin, Name: "a/b"},
	} {
		if _, err := ca.Issue(r); err == nil {
			t.Errorf("issued %+v", r)
		}
	}
	if _, err := pki.InitCA(ca.Dir(), "again"); err == nil {
		t.Error("InitCA replaced an existing CA")
	}
}

func TestIdentityNamesRoleAndName(t *testing.T) {
	ca := testCA(t)
	k := load(t, issue(t, ca, t.TempDir(), pki.RoleAdmin, "alice"))
	id := k.Identity()
	if id.Role != pki.RoleAdmin || id.Name != "alice" || id.Subject != "CN=admin,OU=alice,O=tradeunit" {
		t.Fatalf("identity %+v", id)
	}
}
