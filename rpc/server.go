package rpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"

	"tradeunit"
	"tradeunit/rpc/unitpb"
)

// ServiceName is the full name of the unit's gRPC service. NewServer reports
// its health under this name (and under ""), and Client.Check asks for it, so
// a unit that is draining can be marked NOT_SERVING without stopping.
const ServiceName = "tradeunit.v1.UnitService"

// Keepalive settings of both ends. The client pings at clientPingEvery, so
// the server must tolerate pings at least that often (serverMinPingEvery ≤
// clientPingEvery) or it closes the connection with "too_many_pings".
const (
	serverMinPingEvery = 10 * time.Second
	serverPingEvery    = 30 * time.Second // detects proxies that vanished
	serverPingTimeout  = 10 * time.Second
)

// NewServer returns a gRPC server that serves svc as UnitService and the
// standard gRPC health service, reporting SERVING. opts are applied after the
// defaults, so they can override them. Every call is logged to log at debug
// level with the request id the caller sent (see Client), and every
// SYSTEM_ERROR with its cause at error level.
//
// The returned health server lets the caller drain the unit: call its
// Shutdown (every service becomes NOT_SERVING, so proxies stop choosing this
// replica) some time before the grpc.Server's GracefulStop.
func NewServer(svc tradeunit.OrderService, log *slog.Logger, opts ...grpc.ServerOption) (*grpc.Server, *health.Server) {
	s := grpc.NewServer(append(serverOptions(log), opts...)...)
	Register(s, svc, log)
	h := health.NewServer()
	healthpb.RegisterHealthServer(s, h)
	h.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	h.SetServingStatus(ServiceName, healthpb.HealthCheckResponse_SERVING)
	return s, h
}

// serverOptions are the defaults of every tradeunit gRPC server.
func serverOptions(log *slog.Logger) []grpc.ServerOption {
	calls := &callLog{log: log}
	return []grpc.ServerOption{
		// Accept the client's pings, also on idle connections: they are how a
		// proxy notices a dead replica without waiting for a call to fail.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             serverMinPingEvery,
			PermitWithoutStream: true,
		}),
		// Ping clients too, so connections of proxies that disappeared
		// without closing (host down, partition) are freed.
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time:    serverPingEvery,
			Timeout: serverPingTimeout,
		}),
		grpc.ChainUnaryInterceptor(calls.intercept),
		// Calls run on long-lived workers rather than a goroutine each:
		// a call that reaches SQLite grows its goroutine's stack to tens of
		// kilobytes, and growing a fresh one on every call (newstack,
		// copystack) was a tenth of a unit's CPU under queries. Calls
		// beyond the workers still get a goroutine of their own.
		grpc.NumStreamWorkers(streamWorkers),
	}
}

// streamWorkers is how many calls a server runs on its workers at once: as
// many as a proxy's creates commonly wait on one batch.
const streamWorkers = 64

// Register registers svc on s as the UnitService, logging its faults to
// log. Use it to add the unit to a server built elsewhere; NewServer does it
// for you.
func Register(s *grpc.Server, svc tradeunit.OrderService, log *slog.Logger) {
	unitpb.RegisterUnitServiceServer(s, &server{svc: svc, log: log})
}

// server adapts a tradeunit.OrderService to the generated UnitServiceServer.
// It holds no state: every call converts the request, calls svc, and
// converts the result or error. A read's consistency travels as a field of
// its request and is restored into the ctx the service sees.
type server struct {
	unitpb.UnimplementedUnitServiceServer
	svc tradeunit.OrderService
	log *slog.Logger
}

var _ unitpb.UnitServiceServer = (*server)(nil)

func (s *server) CreateOrder(ctx context.Context, r *unitpb.CreateOrderRequest) (*unitpb.Order, error) {
	o, err := s.svc.CreateOrder(ctx, createOrderFromProto(r))
	return s.order(ctx, "CreateOrder", o, err)
}

func (s *server) GetOrder(ctx context.Context, r *unitpb.GetOrderRequest) (*unitpb.Order, error) {
	ctx = tradeunit.WithConsistency(ctx, consistencyFromProto(r.GetConsistency()))
	o, err := s.svc.Order(ctx, r.GetMchid(), r.GetOrderNo())
	return s.order(ctx, "GetOrder", o, err)
}

func (s *server) GetOrderByOutTradeNo(ctx context.Context, r *unitpb.GetOrderByOutTradeNoRequest) (*unitpb.Order, error) {
	ctx = tradeunit.WithConsistency(ctx, consistencyFromProto(r.GetConsistency()))
	o, err := s.svc.OrderByOutTradeNo(ctx, r.GetMchid(), r.GetOutTradeNo())
	return s.order(ctx, "GetOrderByOutTradeNo", o, err)
}

func (s *server) PayOrder(ctx context.Context, r *unitpb.PayOrderRequest) (*unitpb.Order, error) {
	o, err := s.svc.PayOrder(ctx, payOrderFromProto(r))
	return s.order(ctx, "PayOrder", o, err)
}

func (s *server) CloseOrder(ctx context.Context, r *unitpb.CloseOrderRequest) (*unitpb.Order, error) {
	o, err := s.svc.CloseOrder(ctx, r.GetMchid(), r.GetOrderNo())
	return s.order(ctx, "CloseOrder", o, err)
}

func (s *server) CreateRefund(ctx context.Context, r *unitpb.CreateRefundRequest) (*unitpb.Refund, error) {
	f, err := s.svc.CreateRefund(ctx, createRefundFromProto(r))
	return s.refund(ctx, "CreateRefund", f, err)
}

func (s *server) GetRefund(ctx context.Context, r *unitpb.GetRefundRequest) (*unitpb.Refund, error) {
	ctx = tradeunit.WithConsistency(ctx, consistencyFromProto(r.GetConsistency()))
	f, err := s.svc.Refund(ctx, r.GetMchid(), r.GetOutRefundNo())
	return s.refund(ctx, "GetRefund", f, err)
}

func (s *server) SupersedeAttempt(ctx context.Context, r *unitpb.SupersedeAttemptRequest) (*unitpb.Order, error) {
	o, err := s.svc.SupersedeAttempt(ctx, r.GetMchid(), r.GetOutTradeNo(), r.GetAttempt())
	return s.order(ctx, "SupersedeAttempt", o, err)
}

func (s *server) CloseSuperseded(ctx context.Context, r *unitpb.CloseSupersededRequest) (*unitpb.Order, error) {
	o, err := s.svc.CloseSuperseded(ctx, r.GetMchid(), r.GetOrderNo(), r.GetWinner())
	return s.order(ctx, "CloseSuperseded", o, err)
}

// errNilResult is the cause logged when a service breaks its contract by
// returning neither a result nor an error.
var errNilResult = errors.New("service returned neither a result nor an error")

// order finishes a call returning an order. A nil order without an error is
// a bug of the service; it is reported as SYSTEM_ERROR rather than sent as an
// empty order the proxy would take for a real one.
func (s *server) order(ctx context.Context, method string, o *tradeunit.Order, err error) (*unitpb.Order, error) {
	if err == nil && o == nil {
		err = tradeunit.Internal("rpc."+method, errNilResult)
	}
	if err != nil {
		return nil, toStatus(ctx, s.log, method, err)
	}
	return orderToProto(o), nil
}

// refund is order for calls returning a refund.
func (s *server) refund(ctx context.Context, method string, f *tradeunit.Refund, err error) (*unitpb.Refund, error) {
	if err == nil && f == nil {
		err = tradeunit.Internal("rpc."+method, errNilResult)
	}
	if err != nil {
		return nil, toStatus(ctx, s.log, method, err)
	}
	return refundToProto(f), nil
}

// callLog is the server's interceptor: it restores the caller's request id
// into the context, turns a panic in a handler into a SYSTEM_ERROR answer
// (one bad request must not take down a replica and every call in flight on
// it), and logs each call at debug level.
type callLog struct{ log *slog.Logger }

func (l *callLog) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if ids := md.Get(requestIDHeader); len(ids) > 0 {
			ctx = tradeunit.WithRequestID(ctx, ids[0])
		}
	}
	start := time.Now()
	defer func() {
		if v := recover(); v != nil {
			err = toStatus(ctx, l.log, info.FullMethod, tradeunit.Internal(info.FullMethod, fmt.Errorf("panic: %v", v)))
		}
		if l.log.Enabled(ctx, slog.LevelDebug) {
			code := "OK"
			if err != nil {
				code = string(tradeunit.ErrorCode(fromStatus(info.FullMethod, err)))
			}
			l.log.DebugContext(ctx, "rpc", "method", path.Base(info.FullMethod), "code", code,
				"duration", time.Since(start), "request_id", tradeunit.RequestID(ctx))
		}
	}()
	return handler(ctx, req)
}

// requestIDHeader is the gRPC metadata key of the API request id.
const requestIDHeader = "tradeunit-request-id"

// sendRequestID is the client's interceptor: it passes the request id of
// the call's context to the unit.
func sendRequestID(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if id := tradeunit.RequestID(ctx); id != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, requestIDHeader, id)
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}
