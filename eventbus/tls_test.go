package eventbus_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"tradeunit/eventbus"
	"tradeunit/pki"
)

// An embedded server with TLS takes a client of the cluster's CA and
// refuses one that presents no certificate.
func TestEmbeddedServerRequiresClientCertificates(t *testing.T) {
	ca, err := pki.InitCA(filepath.Join(t.TempDir(), "ca"), "test CA")
	if err != nil {
		t.Fatal(err)
	}
	keys := func(role pki.Role, name string) *pki.Keys {
		k, err := ca.IssueKeys(t.TempDir(), pki.Request{Role: role, Name: name})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	emb, err := eventbus.StartEmbedded(t.TempDir(), "127.0.0.1:0", eventbus.WithTLS(keys(pki.RoleServer, "nats").ServerTLS()))
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Shutdown()
	cfg := eventbus.DefaultConfig()
	cfg.URL, cfg.ConnectTimeout = emb.URL(), 2*time.Second
	cfg.TLS = keys(pki.RoleRelay, "1").ClientTLS()
	log := slog.New(slog.DiscardHandler)
	bus, err := eventbus.Open(context.Background(), cfg, log)
	if err != nil {
		t.Fatalf("relay with a certificate: %v", err)
	}
	bus.Close()

	noCert := keys(pki.RoleRelay, "2").ClientTLS()
	noCert.GetClientCertificate = nil
	cfg.TLS, cfg.ConnectTimeout = noCert, 300*time.Millisecond
	if bus, err := eventbus.Open(context.Background(), cfg, log); err == nil {
		bus.Close()
		t.Fatal("a client without a certificate connected")
	}
	cfg.TLS = nil
	if bus, err := eventbus.Open(context.Background(), cfg, log); err == nil {
		bus.Close()
		t.Fatal("a plaintext client connected")
	}
}
