package rpc

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"tradeunit"
	"tradeunit/rpc/unitpb"
)

// Client is a tradeunit.OrderService served by a remote unit replica, or a
// tradeunit.DirectoryStore served by a remote directory shard replica (one
// connection, whichever the address serves). The
// proxy holds one per logic-service address; it is safe for concurrent use
// and reconnects by itself.
//
// Reads carry the consistency of their ctx (tradeunit.WithConsistency) to
// the unit, and return where the unit read them from (Order.Read).
//
// Errors are those of the remote service, with the same codes and messages,
// or UNIT_UNAVAILABLE errors marked tradeunit.ErrNoAnswer when the replica
// did not answer. Calls never wait for a connection to come up: while the
// replica is down they fail at once, so the proxy can move on quickly.
type Client struct {
	redialState
	addr   string
	conn   *grpc.ClientConn
	api    unitpb.UnitServiceClient
	dir    unitpb.DirectoryServiceClient
	health healthpb.HealthClient
}

var (
	_ tradeunit.LogicConn     = (*Client)(nil)
	_ tradeunit.DirectoryConn = (*Client)(nil)
)

// defaultServiceConfig: calls fail fast while the connection is down
// (waitForReady false, gRPC's default, written out because the proxy relies
// on it). It sets no timeout: every caller bounds its calls with its own
// deadline (the proxy's --unit-timeout), which a default here would cap.
const defaultServiceConfig = `{
	"methodConfig": [{
		"name": [{"service": "tradeunit.v1.UnitService"}, {"service": "grpc.health.v1.Health"}],
		"waitForReady": false
	}]
}`

// Keepalive and reconnection of the client. clientPingEvery must not be
// shorter than the server's serverMinPingEvery.
const (
	clientPingEvery   = 20 * time.Second
	clientPingTimeout = 5 * time.Second
	// A connect attempt on loopback or a private network that takes longer
	// than this is to a dead host; gRPC's default of 20s is for the Internet.
	minConnectTimeout = 3 * time.Second
	// gRPC's default backoff grows to 120s, so a replica back from a restart
	// could wait two minutes for traffic; cap it at a few seconds instead.
	maxReconnectDelay = 5 * time.Second
)

// Dial returns a Client of the unit replica at addr ("host:port"). It does
// not connect: the connection is made on the first call and remade after a
// failure, so Dial succeeds even when the replica is down. opts are applied
// after the defaults, so they can override them (e.g. TLS credentials).
//
// Calls are bounded only by their ctx: give each a deadline.
//
// The default transport is plaintext; pass WithKeys for mutual TLS, which
// a server with ServerKeys requires.
func Dial(addr string, opts ...grpc.DialOption) (*Client, error) {
	defaults := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(defaultServiceConfig),
		grpc.WithChainUnaryInterceptor(sendRequestID),
		// Ping also when idle, so a replica that vanished without closing
		// its connections (host down, partition) is noticed within
		// clientPingEvery+clientPingTimeout rather than at the next call.
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time:                clientPingEvery,
			Timeout:             clientPingTimeout,
			PermitWithoutStream: true,
		}),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{
				BaseDelay:  200 * time.Millisecond,
				Multiplier: backoff.DefaultConfig.Multiplier,
				Jitter:     backoff.DefaultConfig.Jitter,
				MaxDelay:   maxReconnectDelay,
			},
			MinConnectTimeout: minConnectTimeout,
		}),
	}
	conn, err := grpc.NewClient(addr, append(defaults, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("rpc: dial unit %s: %w", addr, err)
	}
	return &Client{
		addr:   addr,
		conn:   conn,
		api:    unitpb.NewUnitServiceClient(conn),
		dir:    unitpb.NewDirectoryServiceClient(conn),
		health: healthpb.NewHealthClient(conn),
	}, nil
}

// Close closes the connection. Calls in flight fail as transport errors.
func (c *Client) Close() error { return c.conn.Close() }

// Addr returns the address the Client was dialed with, for logs and for the
// proxy's bookkeeping of which replica failed.
func (c *Client) Addr() string { return c.addr }

// Check asks the replica's gRPC health service whether UnitService is
// SERVING. It returns nil if so; an error marked tradeunit.ErrNoAnswer if
// the replica cannot be reached; and a UNIT_UNAVAILABLE error otherwise, e.g.
// while the replica drains. Health checkers and the proxy use it to stop
// choosing a replica before real calls fail.
func (c *Client) Check(ctx context.Context) error {
	resp, err := c.health.Check(ctx, &healthpb.HealthCheckRequest{Service: ServiceName})
	if err != nil {
		// The health service sends no ErrorInfo, so this is always a
		// transport error, including NotFound from a server that has no
		// health entry for the unit: it is not a unit we can use.
		return transportError("Check", status.Code(err), err)
	}
	if st := resp.GetStatus(); st != healthpb.HealthCheckResponse_SERVING {
		return &tradeunit.Error{
			Code:    tradeunit.CodeUnitUnavailable,
			Message: "unit is " + st.String(),
			Op:      "rpc.Check",
		}
	}
	return nil
}

// CreateOrder implements tradeunit.OrderService.
func (c *Client) CreateOrder(ctx context.Context, r tradeunit.CreateOrderRequest) (*tradeunit.Order, error) {
	p, err := c.api.CreateOrder(ctx, createOrderToProto(r))
	if err != nil {
		return nil, fromStatus("CreateOrder", err)
	}
	return orderFromProto(p), nil
}

// Order implements tradeunit.OrderService.
func (c *Client) Order(ctx context.Context, mchid, orderNo string) (*tradeunit.Order, error) {
	p, err := c.api.GetOrder(ctx, &unitpb.GetOrderRequest{Mchid: mchid, OrderNo: orderNo,
		Consistency: consistencyToProto(tradeunit.ConsistencyFrom(ctx))})
	if err != nil {
		return nil, fromStatus("GetOrder", err)
	}
	return orderFromProto(p), nil
}

// OrderByOutTradeNo implements tradeunit.OrderService.
func (c *Client) OrderByOutTradeNo(ctx context.Context, mchid, outTradeNo string) (*tradeunit.Order, error) {
	p, err := c.api.GetOrderByOutTradeNo(ctx, &unitpb.GetOrderByOutTradeNoRequest{Mchid: mchid, OutTradeNo: outTradeNo,
		Consistency: consistencyToProto(tradeunit.ConsistencyFrom(ctx))})
	if err != nil {
		return nil, fromStatus("GetOrderByOutTradeNo", err)
	}
	return orderFromProto(p), nil
}

// PayOrder implements tradeunit.OrderService.
func (c *Client) PayOrder(ctx context.Context, r tradeunit.PayOrderRequest) (*tradeunit.Order, error) {
	p, err := c.api.PayOrder(ctx, payOrderToProto(r))
	if err != nil {
		return nil, fromStatus("PayOrder", err)
	}
	return orderFromProto(p), nil
}

// CloseOrder implements tradeunit.OrderService.
func (c *Client) CloseOrder(ctx context.Context, mchid, orderNo string) (*tradeunit.Order, error) {
	p, err := c.api.CloseOrder(ctx, &unitpb.CloseOrderRequest{Mchid: mchid, OrderNo: orderNo})
	if err != nil {
		return nil, fromStatus("CloseOrder", err)
	}
	return orderFromProto(p), nil
}

// CreateRefund implements tradeunit.OrderService.
func (c *Client) CreateRefund(ctx context.Context, r tradeunit.CreateRefundRequest) (*tradeunit.Refund, error) {
	p, err := c.api.CreateRefund(ctx, createRefundToProto(r))
	if err != nil {
		return nil, fromStatus("CreateRefund", err)
	}
	return refundFromProto(p), nil
}

// Refund implements tradeunit.OrderService.
func (c *Client) Refund(ctx context.Context, mchid, outRefundNo string) (*tradeunit.Refund, error) {
	p, err := c.api.GetRefund(ctx, &unitpb.GetRefundRequest{Mchid: mchid, OutRefundNo: outRefundNo,
		Consistency: consistencyToProto(tradeunit.ConsistencyFrom(ctx))})
	if err != nil {
		return nil, fromStatus("GetRefund", err)
	}
	return refundFromProto(p), nil
}

// SupersedeAttempt implements tradeunit.OrderService.
func (c *Client) SupersedeAttempt(ctx context.Context, mchid, outTradeNo string, attempt uint64) (*tradeunit.Order, error) {
	p, err := c.api.SupersedeAttempt(ctx, &unitpb.SupersedeAttemptRequest{Mchid: mchid, OutTradeNo: outTradeNo, Attempt: attempt})
	if err != nil {
		return nil, fromStatus("SupersedeAttempt", err)
	}
	return orderFromProto(p), nil
}

// CloseSuperseded implements tradeunit.OrderService.
func (c *Client) CloseSuperseded(ctx context.Context, mchid, orderNo, winner string) (*tradeunit.Order, error) {
	p, err := c.api.CloseSuperseded(ctx, &unitpb.CloseSupersededRequest{Mchid: mchid, OrderNo: orderNo, Winner: winner})
	if err != nil {
		return nil, fromStatus("CloseSuperseded", err)
	}
	return orderFromProto(p), nil
}
