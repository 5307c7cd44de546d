// Package rpc carries tradeunit.OrderService over gRPC between the stateless
// proxy and a transaction unit's logic service.
//
// The unit side wraps its tradeunit.OrderService with Register (or
// NewServer, which adds keepalive enforcement and the standard health
// service). The proxy side calls Dial and uses the *Client as a
// tradeunit.OrderService, so proxy code is the same for a local and a remote
// unit.
//
// Errors keep their domain code across the wire (see errors.go). The proxy
// must tell "the unit answered with a definite outcome" from "the unit could
// not be reached or did not answer", because only the latter may leave an
// unknown outcome behind and justifies retrying elsewhere or blocking the
// unit: tradeunit.Answered is false for the latter.
//
// The wire contract is proto/tradeunit/v1/unit.proto; the generated code in
// rpc/unitpb is kept in the repository and rebuilt by `go generate ./rpc/`.
package rpc

//go:generate bash ../proto/generate.sh
