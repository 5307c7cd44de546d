package rpc

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"path"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"tradeunit"
	"tradeunit/pki"
	"tradeunit/rpc/unitpb"
)

// WithKeys returns the dial options of a client presenting k's certificate
// over mutual TLS (see Dial: they override its insecure default). nil keys
// give no options: the plaintext mode of a deployment without TLS.
func WithKeys(k *pki.Keys) []grpc.DialOption {
	if k == nil {
		return nil
	}
	return []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(k.ClientTLS()))}
}

// ServerKeys returns the server options of a tradeunit gRPC server with
// keys k: mutual TLS (a client without a valid certificate of the CA fails
// the handshake) and Authorize's policy on every call. nil keys give no
// options: plaintext, and no check.
func ServerKeys(k *pki.Keys) []grpc.ServerOption {
	if k == nil {
		return nil
	}
	return []grpc.ServerOption{
		grpc.Creds(credentials.NewTLS(k.ServerTLS())),
		grpc.ChainUnaryInterceptor(authorizeUnary),
		grpc.ChainStreamInterceptor(authorizeStream),
	}
}

// Any role whose certificate verified.
const anyRole = "*"

// policy is who may call what: for each method (service "/" method, or
// service "/*" for all of its methods) the roles allowed. A role listed
// under probeOnly may make the call only for the probe merchant. What is not
// listed is refused. It is the one table of the trust model (README, "Trust
// model").
var policy = map[string][]pki.Role{
	// The proxy calls for merchants; it checked the merchant's API key.
	unitService + "/*": {pki.RoleProxy},
	// The checker's probes: create, read and close probe orders.
	unitService + "/CreateOrder": {pki.RoleProxy, pki.RoleChecker},
	unitService + "/GetOrder":    {pki.RoleProxy, pki.RoleChecker},
	// An operator's move to cold storage (lifecycle) reads its marker,
	// a probe order, to see that each logic service reads the copy.
	unitService + "/GetOrderByOutTradeNo": {pki.RoleProxy, pki.RoleChecker, pki.RoleAdmin},
	unitService + "/CloseOrder":           {pki.RoleProxy, pki.RoleChecker},
	// The directory shards' reconciler settles lost creates (directory/reconcile.go).
	unitService + "/SupersedeAttempt": {pki.RoleProxy, pki.RoleDirectory},
	unitService + "/CloseSuperseded":  {pki.RoleProxy, pki.RoleDirectory},
	// Lookups and creates route through the directory (proxy); shards
	// reconcile among themselves; operators backfill and verify it
	// (tradeunit admin directory, cluster.WaitHolding).
	DirectoryServiceName + "/*": {pki.RoleProxy, pki.RoleDirectory, pki.RoleAdmin},
	// Everyone checks health: proxies, checkers, shards, operators.
	"grpc.health.v1.Health/*": {anyRole},
}

// probeOnly are the roles that may call the methods of a service only with
// the probe merchant (tradeunit.ProbeMchid) as the request's mchid: the
// checker and the operator on the units (an operator calls the directory
// for every merchant).
var probeOnly = map[pki.Role]string{pki.RoleChecker: unitService, pki.RoleAdmin: unitService}

const unitService = ServiceName

// Allowed reports whether role may call method (a full gRPC method name,
// "/service/method") with mchid (of the request; "" if it has none). It is
// the policy the servers of ServerKeys enforce.
func Allowed(role pki.Role, method, mchid string) bool {
	svc, name := path.Split(strings.TrimPrefix(method, "/"))
	svc = strings.TrimSuffix(svc, "/")
	roles, ok := policy[svc+"/"+name]
	if !ok {
		roles = policy[svc+"/*"]
	}
	for _, r := range roles {
		if r == anyRole {
			return true
		}
		if r == role {
			return probeOnly[role] != svc || tradeunit.IsProbe(mchid)
		}
	}
	return false
}

// mchidOf is the merchant a request is for, "" for requests without one.
func mchidOf(req any) string {
	if m, ok := req.(interface{ GetMchid() string }); ok {
		return m.GetMchid()
	}
	if k, ok := req.(interface{ GetKey() *unitpb.MerchantKey }); ok {
		return k.GetKey().GetMchid()
	}
	return ""
}

// callerOf is the verified certificate of ctx's peer. The handshake
// verified its chain (pki.Keys.ServerTLS).
func callerOf(ctx context.Context) (*x509.Certificate, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil, fmt.Errorf("no peer")
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.PeerCertificates) == 0 {
		return nil, fmt.Errorf("not a TLS connection with a certificate")
	}
	return info.State.PeerCertificates[0], nil
}

// authorize refuses a call its caller's role may not make, with
// PERMISSION_DENIED: a definite answer, so the caller does not retry it
// elsewhere.
func authorize(ctx context.Context, method string, req any) error {
	cert, err := callerOf(ctx)
	if err != nil {
		return tradeunit.Errorf(tradeunit.CodePermissionDenied, "%s: caller not identified: %v", path.Base(method), err)
	}
	// The role alone decides, read from the subject without formatting it:
	// this runs on every call. The whole identity is for the refusal.
	if Allowed(pki.Role(cert.Subject.CommonName), method, mchidOf(req)) {
		return nil
	}
	id, err := pki.IdentityOf(cert)
	if err != nil {
		return tradeunit.Errorf(tradeunit.CodePermissionDenied, "%s: %v", path.Base(method), err)
	}
	return tradeunit.Errorf(tradeunit.CodePermissionDenied, "%s may not call %s for this merchant", id, path.Base(method))
}

func authorizeUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := authorize(ctx, info.FullMethod, req); err != nil {
		return nil, toStatus(ctx, slog.Default(), info.FullMethod, err)
	}
	return handler(ctx, req)
}

// authorizeStream checks streams (the health service's Watch) before their
// first message, so by method and role only.
func authorizeStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := authorize(ss.Context(), info.FullMethod, nil); err != nil {
		return toStatus(ss.Context(), slog.Default(), info.FullMethod, err)
	}
	return handler(srv, ss)
}
