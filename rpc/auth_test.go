package rpc

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"tradeunit"
	"tradeunit/pki"
)

// tlsUnit serves a fakeService with mutual TLS and the policy, keys issued
// by ca as unit "unit-1".
func tlsUnit(t *testing.T, ca *pki.CA, dir string) string {
	t.Helper()
	keys := issueKeys(t, ca, dir, pki.RoleUnit, "unit-1")
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	svc := &fakeService{}
	svc.set(testOrder(), testRefund(), nil)
	srv, _ := NewServer(svc, slog.New(slog.NewTextHandler(io.Discard, nil)), ServerKeys(keys)...)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

func issueKeys(t *testing.T, ca *pki.CA, dir string, role pki.Role, name string) *pki.Keys {
	t.Helper()
	files, err := ca.IssueFiles(dir, pki.Request{Role: role, Name: name})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := pki.Load(files)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// TestPolicyOverTLS calls a unit over real mutual TLS with each role's
// certificate: the policy's answers, not a mock's.
func TestPolicyOverTLS(t *testing.T) {
	dir := t.TempDir()
	ca, err := pki.InitCA(dir+"/ca", "test")
	if err != nil {
		t.Fatal(err)
	}
	addr := tlsUnit(t, ca, dir)
	const mch = "1900000001"
	probe := tradeunit.ProbeMchid
	type call func(ctx context.Context, c *Client) error
	create := func(mchid string) call {
		return func(ctx context.Context, c *Client) error {
			_, err := c.CreateOrder(ctx, tradeunit.CreateOrderRequest{Mchid: mchid, OutTradeNo: "t1"})
			return err
		}
	}
	get := func(mchid string) call {
		return func(ctx context.Context, c *Client) error { _, err := c.Order(ctx, mchid, "o1"); return err }
	}
	byOutTradeNo := func(mchid string) call {
		return func(ctx context.Context, c *Client) error {
			_, err := c.OrderByOutTradeNo(ctx, mchid, "t1")
			return err
		}
	}
	closeOrder := func(mchid string) call {
		return func(ctx context.Context, c *Client) error { _, err := c.CloseOrder(ctx, mchid, "o1"); return err }
	}
	pay := func(mchid string) call {
		return func(ctx context.Context, c *Client) error {
			_, err := c.PayOrder(ctx, tradeunit.PayOrderRequest{Mchid: mchid, OrderNo: "o1"})
			return err
		}
	}
	supersede := func(ctx context.Context, c *Client) error {
		_, err := c.SupersedeAttempt(ctx, mch, "t1", 1)
		return err
	}
	settle := func(ctx context.Context, c *Client) error {
		_, err := c.CloseSuperseded(ctx, mch, "o1", "o2")
		return err
	}
	health := func(ctx context.Context, c *Client) error { return c.Check(ctx) }
	for _, tc := range []struct {
		name    string
		role    pki.Role
		call    call
		allowed bool
	}{
		{"proxy creates", pki.RoleProxy, create(mch), true},
		{"proxy pays", pki.RoleProxy, pay(mch), true},
		{"proxy supersedes", pki.RoleProxy, supersede, true},
		{"checker creates a probe", pki.RoleChecker, create(probe), true},
		{"checker reads a probe", pki.RoleChecker, get(probe), true},
		{"checker closes a probe", pki.RoleChecker, closeOrder(probe), true},
		{"checker creates a merchant's order", pki.RoleChecker, create(mch), false},
		{"checker reads a merchant's order", pki.RoleChecker, get(mch), false},
		{"checker closes a merchant's order", pki.RoleChecker, closeOrder(mch), false},
		{"checker pays a probe", pki.RoleChecker, pay(probe), false},
		{"checker checks health", pki.RoleChecker, health, true},
		{"directory supersedes", pki.RoleDirectory, supersede, true},
		{"directory settles", pki.RoleDirectory, settle, true},
		{"directory creates", pki.RoleDirectory, create(mch), false},
		{"admin creates", pki.RoleAdmin, create(mch), false},
		{"admin reads a probe by out_trade_no (a move's marker)", pki.RoleAdmin, byOutTradeNo(probe), true},
		{"admin reads a merchant's order by out_trade_no", pki.RoleAdmin, byOutTradeNo(mch), false},
		{"admin reads a probe by number", pki.RoleAdmin, get(probe), false},
		{"admin checks health", pki.RoleAdmin, health, true},
		{"relay reads", pki.RoleRelay, get(mch), false},
		{"query creates a probe", pki.RoleQuery, create(probe), false},
		{"unit creates", pki.RoleUnit, create(mch), false},
		{"server creates", pki.RoleServer, create(mch), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keys := issueKeys(t, ca, t.TempDir(), tc.role, "caller")
			c, err := Dial(addr, WithKeys(keys)...)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err = tc.call(ctx, c)
			switch {
			case tc.allowed && err != nil:
				t.Fatalf("refused: %v", err)
			case !tc.allowed && !tradeunit.IsCode(err, tradeunit.CodePermissionDenied):
				t.Fatalf("got %v, want PERMISSION_DENIED", err)
			}
		})
	}
}

// TestHandshakeRefusesStrangers: no certificate, or one of another CA,
// never reaches the policy.
func TestHandshakeRefusesStrangers(t *testing.T) {
	dir := t.TempDir()
	ca, err := pki.InitCA(dir+"/ca", "test")
	if err != nil {
		t.Fatal(err)
	}
	addr := tlsUnit(t, ca, dir)
	other, err := pki.InitCA(dir+"/other", "other")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for name, c := range map[string]func() (*Client, error){
		"plaintext": func() (*Client, error) { return Dial(addr) },
		"another CA": func() (*Client, error) {
			return Dial(addr, WithKeys(issueKeys(t, other, t.TempDir(), pki.RoleProxy, "p"))...)
		},
	} {
		t.Run(name, func(t *testing.T) {
			cl, err := c()
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			_, err = cl.CreateOrder(ctx, tradeunit.CreateOrderRequest{Mchid: "1900000001", OutTradeNo: "t1"})
			if err == nil || tradeunit.IsCode(err, tradeunit.CodePermissionDenied) {
				t.Fatalf("got %v, want a transport failure", err)
			}
		})
	}
}

// TestPlaintextServerChecksNothing: without keys there is no policy.
func TestPlaintextServerChecksNothing(t *testing.T) {
	if ServerKeys(nil) != nil || WithKeys(nil) != nil {
		t.Fatal("nil keys must give no options")
	}
}
