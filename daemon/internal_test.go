package daemon_test

import (
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"tradeunit/daemon"
	"tradeunit/pki"
)

func keysOf(t *testing.T, ca *pki.CA, role pki.Role, name string) *pki.Keys {
	t.Helper()
	k, err := ca.IssueKeys(t.TempDir(), pki.Request{Role: role, Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Metrics served with keys answer a client of the cluster's CA, and refuse
// one without a certificate, one of another CA, and plaintext.
func TestMetricsOverMutualTLS(t *testing.T) {
	ca, err := pki.InitCA(filepath.Join(t.TempDir(), "ca"), "test CA")
	if err != nil {
		t.Fatal(err)
	}
	other, err := pki.InitCA(filepath.Join(t.TempDir(), "other"), "other CA")
	if err != nil {
		t.Fatal(err)
	}
	server := keysOf(t, ca, pki.RoleUnit, "1")
	s, err := daemon.ServeMetrics("127.0.0.1:0", "", daemon.NewRegistry(), server, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	url := daemon.InternalURL(s.Addr, server) + "/metrics"
	if !strings.HasPrefix(url, "https://") {
		t.Fatalf("URL %s with keys, want https", url)
	}

	resp, err := daemon.InternalClient(keysOf(t, ca, pki.RoleAdmin, "op")).Get(url)
	if err != nil {
		t.Fatalf("admin of the cluster's CA: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "go_goroutines") {
		t.Fatalf("admin: %s %.100s", resp.Status, body)
	}

	if resp, err := daemon.InternalClient(keysOf(t, other, pki.RoleAdmin, "op")).Get(url); err == nil {
		resp.Body.Close()
		t.Fatal("a certificate of another CA was served")
	}
	// No certificate: trusting the server is not enough.
	noCert := daemon.InternalClient(server)
	noCert.Transport.(*http.Transport).TLSClientConfig.GetClientCertificate = nil
	if resp, err := noCert.Get(url); err == nil {
		resp.Body.Close()
		t.Fatal("a client without a certificate was served")
	}
	if resp, err := http.Get(daemon.InternalURL(s.Addr, nil) + "/metrics"); err == nil && resp.StatusCode == http.StatusOK {
		resp.Body.Close()
		t.Fatal("plaintext was served metrics")
	}
	if got := daemon.InternalURL("h:1", nil); got != "http://h:1" {
		t.Fatalf("InternalURL without keys = %s", got)
	}
}
