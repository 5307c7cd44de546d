package routing_test

import (
	"context"
	"crypto/tls"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tradeunit/internal/etcdtest"
	"tradeunit/pki"
	"tradeunit/routing"
)

// TestEtcdRefusesWhoMayNotWrite: etcd holds where money goes, so only an
// operator's certificate changes it. No certificate, another CA's, or a
// role that only reads: refused, nothing written; and every change in the
// history names the subject of the certificate that made it.
func TestEtcdRefusesWhoMayNotWrite(t *testing.T) {
	c := etcdtest.Start(t, 1)
	spec := c.Spec("/auth")
	ctx := context.Background()
	if err := routing.InitEtcd(ctx, spec, c.Admin(), sampleTable(), routing.Change{Who: "test", What: "init"}); err != nil {
		t.Fatal(err)
	}
	otherCA, err := pki.InitCA(filepath.Join(t.TempDir(), "ca"), "other")
	if err != nil {
		t.Fatal(err)
	}
	other, err := otherCA.IssueFiles(t.TempDir(), pki.Request{Role: pki.RoleAdmin, Name: "mallory"})
	if err != nil {
		t.Fatal(err)
	}
	otherKeys, err := pki.Load(other)
	if err != nil {
		t.Fatal(err)
	}
	noCert := c.Admin().Clone()
	noCert.GetClientCertificate = nil
	for name, cfg := range map[string]*tls.Config{"no certificate": noCert, "another CA's admin": otherKeys.ClientTLS()} {
		o := etcdOptions(c, 100*time.Millisecond)
		o.TLS = cfg
		octx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if e, err := routing.OpenEtcd(octx, spec, o); err == nil {
			e.Close()
			t.Errorf("%s: opened the table", name)
		}
		cancel()
	}

	proxyOpts := etcdOptions(c, 100*time.Millisecond)
	proxyOpts.TLS = c.Client(pki.RoleProxy, "proxy")
	reader, err := routing.OpenEtcd(ctx, spec, proxyOpts)
	if err != nil {
		t.Fatalf("a proxy cannot read the table: %v", err)
	}
	defer reader.Close()
	_, err = reader.Update(ctx, routing.Change{Who: "proxy", What: "drain 1"}, func(t *routing.Table) error {
		u, _ := t.Unit(1)
		u.AcceptNew = false
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("a proxy's change: got %v, want etcd's permission denied", err)
	}

	admin := openEtcd(t, c, spec)
	if admin.Current().Revision != 1 {
		t.Fatalf("revision %d after the refused change, want 1", admin.Current().Revision)
	}
	if _, err := admin.Update(ctx, routing.Change{Who: "alice", Subject: "CN=admin,OU=forged", What: "drain 2"}, func(t *routing.Table) error {
		u, _ := t.Unit(2)
		u.AcceptNew = false
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	h, err := admin.History(ctx, 10)
	if err != nil || len(h) != 2 {
		t.Fatalf("history %+v, %v; want 2 entries", h, err)
	}
	for _, ch := range h {
		if ch.Subject != "CN=admin,OU=etcdtest-admin,O=tradeunit" {
			t.Errorf("change %d records subject %q, want the writer's certificate's", ch.Revision, ch.Subject)
		}
	}
}
