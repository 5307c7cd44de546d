package e2e

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tradeunit"
	"tradeunit/pki"
	"tradeunit/rpc"
)

const tlsMchid = "1900000001" // the cluster's first demo merchant

// TestMutualTLSRefusesWhoDoesNotBelong calls a unit replica directly as
// callers that must not get in: without a certificate, with one of another
// CA, with a revoked one, as a checker for a merchant; each refused, and
// none of their orders written. The proxy's and the checker's legitimate
// calls go through.
func TestMutualTLSRefusesWhoDoesNotBelong(t *testing.T) {
	c := startCluster(t, options{units: 1, replicas: 1, shards: 1})
	addr := c.Unit(1).Replicas[0].Addr()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var refused []string // out_trade_nos that must not exist
	create := func(cl *rpc.Client, mchid, what string) error {
		out := uniq("tls-" + what)
		_, err := cl.CreateOrder(ctx, tradeunit.CreateOrderRequest{Mchid: mchid, OutTradeNo: out, Description: "tls " + what,
			Amount: tradeunit.Amount{Total: 1, Currency: tradeunit.DefaultCurrency}})
		if err != nil && mchid == tlsMchid {
			refused = append(refused, out)
		}
		return err
	}
	dial := func(files *pki.Files) *rpc.Client {
		var cl *rpc.Client
		var err error
		if files == nil {
			cl, err = rpc.Dial(addr)
		} else {
			cl, err = rpc.Dial(addr, dialAs(t, *files)...)
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cl.Close() })
		return cl
	}
	wantHandshakeRefused := func(what string, err error) {
		t.Helper()
		if err == nil || !errors.Is(err, tradeunit.ErrNoAnswer) {
			t.Fatalf("%s: got %v, want refused at the handshake", what, err)
		}
	}

	// (a) No client certificate: plaintext to a TLS port.
	wantHandshakeRefused("no certificate", create(dial(nil), tlsMchid, "plain"))

	// (b) A proxy certificate of another CA.
	other, err := pki.InitCA(t.TempDir(), "stranger")
	if err != nil {
		t.Fatal(err)
	}
	strangerFiles, err := other.IssueFiles(t.TempDir(), pki.Request{Role: pki.RoleProxy, Name: "proxy"})
	if err != nil {
		t.Fatal(err)
	}
	wantHandshakeRefused("another CA", create(dial(&strangerFiles), tlsMchid, "stranger"))

	// (c) A proxy certificate of the cluster's CA, revoked: new
	// connections are refused once the unit reloads the revocation list.
	revoked := issueTLS(t, c, pki.RoleProxy, "revoked-proxy")
	if err := dial(&revoked).Check(ctx); err != nil {
		t.Fatalf("before revocation: %v", err)
	}
	keys, err := pki.Load(revoked)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CA().Revoke(keys.Identity().Serial); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the unit refuses the revoked certificate", func() bool {
		return dial(&revoked).Check(ctx) != nil // a new connection each time: revocation is checked at the handshake
	})
	wantHandshakeRefused("revoked", create(dial(&revoked), tlsMchid, "revoked"))

	// (d) A checker: probe orders only.
	checker := dial(ptr(issueTLS(t, c, pki.RoleChecker, "test-checker")))
	if err := create(checker, tlsMchid, "checker"); !tradeunit.IsCode(err, tradeunit.CodePermissionDenied) {
		t.Fatalf("checker creating a merchant's order: got %v, want PERMISSION_DENIED", err)
	}
	if err := create(checker, tradeunit.ProbeMchid, "probe"); err != nil {
		t.Fatalf("checker creating a probe order: %v", err)
	}

	// (e) A proxy certificate: the merchants' calls go through.
	proxy := dial(ptr(issueTLS(t, c, pki.RoleProxy, "test-proxy")))
	if err := create(proxy, tlsMchid, "proxy"); err != nil {
		t.Fatalf("proxy creating: %v", err)
	}

	// Nothing refused was written: the proxy looks each one up.
	for _, out := range refused {
		if _, err := proxy.OrderByOutTradeNo(ctx, tlsMchid, out); !tradeunit.IsCode(err, tradeunit.CodeNotFound) {
			t.Errorf("refused order %s: got %v, want RESOURCE_NOT_EXISTS", out, err)
		}
	}
	if len(refused) != 4 {
		t.Fatalf("%d refused creates recorded, want 4", len(refused))
	}
}

func ptr[T any](v T) *T { return &v }

// TestCertificateRotationUnderLoad re-issues the unit's and the proxy's
// certificates while merchants create orders through the proxy: no request
// fails, and the unit serves each new certificate without a restart.
func TestCertificateRotationUnderLoad(t *testing.T) {
	c := startCluster(t, options{units: 1, replicas: 1, shards: 1})
	addr := c.Unit(1).Replicas[0].Addr()
	admin, err := pki.Load(c.AdminTLS())
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	for w := 0; w < 4; w++ {
		api := newClient(t, c, 0)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				r, err := api.try("POST", "/v3/orders", createBody(fmt.Sprintf("rot-%d-%d-%d", w, i, time.Now().UnixNano()), 1))
				if err == nil && r.status != 200 {
					err = fmt.Errorf("status %d %v", r.status, r.body)
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				ok.Add(1)
			}
		}()
	}
	dir := c.Dir + "/pki"
	for round := 0; round < 3; round++ {
		before := servedSerial(t, addr, admin)
		var proxySerial string
		for _, r := range []pki.Request{{Role: pki.RoleUnit, Name: "unit-1"}, {Role: pki.RoleProxy, Name: "proxy"}} {
			files, err := c.CA().IssueFiles(dir, r)
			if err != nil {
				t.Fatal(err)
			}
			k, err := pki.Load(files)
			if err != nil {
				t.Fatal(err)
			}
			proxySerial = k.Identity().Serial // the last one issued is the proxy's
		}
		waitFor(t, 10*time.Second, "the unit serves its new certificate", func() bool { return servedSerial(t, addr, admin) != before })
		// The proxy's connections to the unit outlive a rotation (it is
		// per handshake); its keys must hold the new certificate for the
		// next one.
		waitFor(t, 10*time.Second, "the proxy's keys hold its new certificate", func() bool {
			return c.Proxy.Keys.Identity().Serial == proxySerial
		})
		done := ok.Load()
		waitFor(t, 10*time.Second, "orders go on after the rotation", func() bool { return ok.Load() > done+5 })
	}
	close(stop)
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d of %d requests failed during rotation; first: %v", n, n+ok.Load(), firstErr.Load())
	}
	if reloads, err := c.Proxy.Keys.Reloads(); reloads < 3 || err != nil {
		t.Fatalf("the proxy reloaded its keys %d times (last error %v), want one per rotation", reloads, err)
	}
	t.Logf("%d orders created across 3 rotations", ok.Load())
}

// servedSerial is the serial of the certificate addr serves now, read on a
// new TLS connection made with keys.
func servedSerial(t *testing.T, addr string, keys *pki.Keys) string {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, keys.ClientTLS())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Text(16)
}
