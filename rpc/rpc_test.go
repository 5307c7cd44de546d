package rpc

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"tradeunit"
	"tradeunit/rpc/unitpb"
)

// fakeService is a tradeunit.OrderService that returns whatever the test
// set and records what it was called with: enough to test the adapter
// without the unit's business logic.
type fakeService struct {
	mu     sync.Mutex
	order  *tradeunit.Order
	refund *tradeunit.Refund
	err    error
	block  bool    // wait for ctx to end, then return an Internal-wrapped ctx error
	calls  [][]any // per call: the method name, then its arguments
	// consistency is what the last call's ctx asked for.
	consistency tradeunit.Consistency
}

func (f *fakeService) set(o *tradeunit.Order, r *tradeunit.Refund, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.order, f.refund, f.err = o, r, err
}

func (f *fakeService) record(ctx context.Context, call ...any) error {
	f.mu.Lock()
	f.calls = append(f.calls, call)
	f.consistency = tradeunit.ConsistencyFrom(ctx)
	block, err := f.block, f.err
	f.mu.Unlock()
	if block {
		<-ctx.Done()
		return tradeunit.Internal("fake.wait", ctx.Err())
	}
	return err
}

func (f *fakeService) lastCall() []any {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) == 0 {
		return nil
	}
	return f.calls[len(f.calls)-1]
}

func (f *fakeService) result(ctx context.Context, call ...any) (*tradeunit.Order, error) {
	if err := f.record(ctx, call...); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.order, nil
}

func (f *fakeService) refundResult(ctx context.Context, call ...any) (*tradeunit.Refund, error) {
	if err := f.record(ctx, call...); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refund, nil
}

func (f *fakeService) CreateOrder(ctx context.Context, r tradeunit.CreateOrderRequest) (*tradeunit.Order, error) {
	return f.result(ctx, "CreateOrder", r)
}

func (f *fakeService) Order(ctx context.Context, mchid, orderNo string) (*tradeunit.Order, error) {
	return f.result(ctx, "Order", mchid, orderNo)
}

func (f *fakeService) OrderByOutTradeNo(ctx context.Context, mchid, outTradeNo string) (*tradeunit.Order, error) {
	return f.result(ctx, "OrderByOutTradeNo", mchid, outTradeNo)
}

func (f *fakeService) PayOrder(ctx context.Context, r tradeunit.PayOrderRequest) (*tradeunit.Order, error) {
	return f.result(ctx, "PayOrder", r)
}

func (f *fakeService) CloseOrder(ctx context.Context, mchid, orderNo string) (*tradeunit.Order, error) {
	return f.result(ctx, "CloseOrder", mchid, orderNo)
}

func (f *fakeService) CreateRefund(ctx context.Context, r tradeunit.CreateRefundRequest) (*tradeunit.Refund, error) {
	return f.refundResult(ctx, "CreateRefund", r)
}

func (f *fakeService) Refund(ctx context.Context, mchid, outRefundNo string) (*tradeunit.Refund, error) {
	return f.refundResult(ctx, "Refund", mchid, outRefundNo)
}

func (f *fakeService) SupersedeAttempt(ctx context.Context, mchid, outTradeNo string, attempt uint64) (*tradeunit.Order, error) {
	return f.result(ctx, "SupersedeAttempt", mchid, outTradeNo, attempt)
}

func (f *fakeService) CloseSuperseded(ctx context.Context, mchid, orderNo, winner string) (*tradeunit.Order, error) {
	return f.result(ctx, "CloseSuperseded", mchid, orderNo, winner)
}

// unit is a served fakeService and a Client of it.
type unit struct {
	svc    *fakeService
	srv    *grpc.Server
	client *Client
}

// startUnit serves a fakeService on a loopback port and dials it.
func startUnit(tb testing.TB) *unit {
	tb.Helper()
	return startUnitLogging(tb, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// startUnitLogging is startUnit with the server logging to log.
func startUnitLogging(tb testing.TB, log *slog.Logger) *unit {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	svc := &fakeService{}
	srv, _ := NewServer(svc, log)
	go func() { _ = srv.Serve(lis) }()
	tb.Cleanup(srv.Stop)
	c, err := Dial(lis.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return &unit{svc: svc, srv: srv, client: c}
}

func testOrder() *tradeunit.Order {
	t0 := time.Date(2025, 3, 4, 5, 6, 7, 123456000, time.UTC)
	return &tradeunit.Order{
		OrderNo:        "1000012503040000000042",
		Mchid:          "1900000109",
		OutTradeNo:     "out-trade-0001",
		Description:    "Image形象店-深圳腾大-QQ公仔",
		Amount:         tradeunit.Amount{Total: 8_888, Currency: "CNY"},
		State:          tradeunit.StateRefund,
		PaymentID:      "pay_4200001234",
		Refunded:       100,
		CreateTime:     t0,
		UpdateTime:     t0.Add(3 * time.Second),
		SuccessTime:    t0.Add(time.Second + time.Microsecond),
		CloseTime:      t0.Add(time.Hour),
		AbandonedUnits: []tradeunit.UnitID{7, 99999},
		Attempt:        1 << 63,
		CloseReason:    tradeunit.CloseSuperseded,
		Read:           tradeunit.ReadInfo{Source: tradeunit.FromReplica, Degraded: true, Staleness: 1234 * time.Microsecond},
	}
}

func testRefund() *tradeunit.Refund {
	return &tradeunit.Refund{
		RefundID:    "1000012503040000000042-1",
		OutRefundNo: "refund@0001",
		Mchid:       "1900000109",
		OrderNo:     "1000012503040000000042",
		Amount:      tradeunit.RefundAmount{Refund: 100, Currency: "CNY"},
		Reason:      "商品已售完",
		Status:      tradeunit.RefundSuccess,
		CreateTime:  time.Date(2025, 3, 4, 6, 0, 0, 999999000, time.UTC),
		Read:        tradeunit.ReadInfo{Source: tradeunit.FromReplica, Staleness: 5 * time.Millisecond},
	}
}

// call is one OrderService method invoked through the client, for tests that
// must hold for every method.
type call struct {
	name string
	do   func(ctx context.Context, s tradeunit.OrderService) error
}

var calls = []call{
	{"CreateOrder", func(ctx context.Context, s tradeunit.OrderService) error {
		_, err := s.CreateOrder(ctx, tradeunit.CreateOrderRequest{Mchid: "m", OutTradeNo: "o"})
		return err
	}},
	{"Order", func(ctx context.Context, s tradeunit.OrderService) error {
		_, err := s.Order(ctx, "m", "n")
		return err
	}},
	{"OrderByOutTradeNo", func(ctx context.Context, s tradeunit.OrderService) error {
		_, err := s.OrderByOutTradeNo(ctx, "m", "o")
		return err
	}},
	{"PayOrder", func(ctx context.Context, s tradeunit.OrderService) error {
		_, err := s.PayOrder(ctx, tradeunit.PayOrderRequest{Mchid: "m", OrderNo: "n", PaymentID: "p"})
		return err
	}},
	{"CloseOrder", func(ctx context.Context, s tradeunit.OrderService) error {
		_, err := s.CloseOrder(ctx, "m", "n")
		return err
	}},
	{"CreateRefund", func(ctx context.Context, s tradeunit.OrderService) error {
		_, err := s.CreateRefund(ctx, tradeunit.CreateRefundRequest{Mchid: "m", OrderNo: "n"})
		return err
	}},
	{"Refund", func(ctx context.Context, s tradeunit.OrderService) error {
		_, err := s.Refund(ctx, "m", "r")
		return err
	}},
	{"SupersedeAttempt", func(ctx context.Context, s tradeunit.OrderService) error {
		_, err := s.SupersedeAttempt(ctx, "m", "o", 7)
		return err
	}},
	{"CloseSuperseded", func(ctx context.Context, s tradeunit.OrderService) error {
		_, err := s.CloseSuperseded(ctx, "m", "n", "w")
		return err
	}},
}

func TestServiceName(t *testing.T) {
	if got, want := ServiceName, unitpb.UnitService_ServiceDesc.ServiceName; got != want {
		t.Fatalf("ServiceName = %q, want %q", got, want)
	}
}

func TestErrorCodesRoundTrip(t *testing.T) {
	u := startUnit(t)
	tests := []struct {
		code tradeunit.Code
		grpc codes.Code
	}{
		{tradeunit.CodeParamError, codes.InvalidArgument},
		{tradeunit.CodeUnauthorized, codes.Unauthenticated},
		{tradeunit.CodePermissionDenied, codes.PermissionDenied},
		{tradeunit.CodeNotFound, codes.NotFound},
		{tradeunit.CodeInvalidRequest, codes.FailedPrecondition},
		{tradeunit.CodeOrderClosed, codes.FailedPrecondition},
		{tradeunit.CodeOrderPaid, codes.FailedPrecondition},
		{tradeunit.CodeNotEnough, codes.FailedPrecondition},
		{tradeunit.CodeOrderArchived, codes.FailedPrecondition},
		{tradeunit.CodeRefundExpired, codes.FailedPrecondition},
		{tradeunit.CodeOutTradeNoUsed, codes.AlreadyExists},
		{tradeunit.CodeOutRefundNoUsed, codes.AlreadyExists},
		{tradeunit.CodeOrderSuperseded, codes.FailedPrecondition},
		{tradeunit.CodeAttemptSuperseded, codes.Aborted},
		{tradeunit.CodeLeaseHeld, codes.Aborted},
		{tradeunit.CodeQueryUnavailable, codes.Unavailable},
		{tradeunit.CodeUnitUnavailable, codes.Unavailable},
		{tradeunit.CodeNoUnitAvailable, codes.Unavailable},
		{tradeunit.CodeInternal, codes.Internal},
		{"SOME_FUTURE_CODE", codes.Internal}, // unknown to the table, still carried exactly
	}
	if len(tests) != len(codeTable)+1 {
		t.Fatalf("test covers %d codes, codeTable has %d: add the new code here", len(tests)-1, len(codeTable))
	}
	for _, tt := range tests {
		t.Run(string(tt.code), func(t *testing.T) {
			msg := "message of " + string(tt.code) + " 订单"
			u.svc.set(nil, nil, &tradeunit.Error{Code: tt.code, Message: msg, Op: "fake.op"})
			for _, c := range calls {
				err := c.do(t.Context(), u.client)
				var e *tradeunit.Error
				if !errors.As(err, &e) {
					t.Fatalf("%s: got %T %v, want *tradeunit.Error", c.name, err, err)
				}
				want := &tradeunit.Error{Code: tt.code, Message: msg}
				if !reflect.DeepEqual(e, want) {
					t.Errorf("%s: got %#v, want %#v", c.name, e, want)
				}
				if !tradeunit.Answered(err) {
					t.Errorf("%s: Answered(%v) = false for an answer of the unit", c.name, err)
				}
			}

			// On the wire: the gRPC code of the table and an ErrorInfo.
			_, err := u.client.api.GetOrder(t.Context(), &unitpb.GetOrderRequest{Mchid: "m", OrderNo: "n"})
			st := status.Convert(err)
			if st.Code() != tt.grpc {
				t.Errorf("gRPC code = %v, want %v", st.Code(), tt.grpc)
			}
			var info *errdetails.ErrorInfo
			for _, d := range st.Details() {
				if i, ok := d.(*errdetails.ErrorInfo); ok {
					info = i
				}
			}
			if info == nil || info.GetReason() != string(tt.code) || info.GetDomain() != "tradeunit" {
				t.Errorf("ErrorInfo = %v, want reason %s, domain tradeunit", info, tt.code)
			}
		})
	}
}

// TestOutcomeUnknownCrossesTheWire: a unit whose storage lost the
// connection during COMMIT says so, and the client sees an answered
// UNIT_UNAVAILABLE whose outcome is unknown, unlike a definite refusal.
func TestOutcomeUnknownCrossesTheWire(t *testing.T) {
	u := startUnit(t)
	for _, tt := range []struct {
		name    string
		err     error
		unknown bool
	}{
		{"commit lost", tradeunit.UnknownOutcome("store.PayOrder", errors.New("bad connection")), true},
		{"nothing written", tradeunit.Unavailable("store.PayOrder", "primary is read-only", nil), false},
	} {
		u.svc.set(nil, nil, tt.err)
		_, err := u.client.PayOrder(t.Context(), tradeunit.PayOrderRequest{Mchid: "m", OrderNo: "n", PaymentID: "p"})
		if tradeunit.ErrorCode(err) != tradeunit.CodeUnitUnavailable || !tradeunit.Answered(err) {
			t.Errorf("%s: got %v, want an answered UNIT_UNAVAILABLE", tt.name, err)
		}
		if got := tradeunit.OutcomeUnknown(err); got != tt.unknown {
			t.Errorf("%s: OutcomeUnknown(%v) = %v, want %v", tt.name, err, got, tt.unknown)
		}
	}
}

func TestSystemErrorCauseStaysOnServer(t *testing.T) {
	var logs bytes.Buffer
	u := startUnitLogging(t, slog.New(slog.NewTextHandler(&logs, nil)))
	const secret = "dial tcp 10.1.2.3:3306: password=hunter2"
	for _, cause := range []error{
		tradeunit.Internal("store.PayOrder", errors.New(secret)),
		errors.New(secret), // not even a *tradeunit.Error
	} {
		logs.Reset()
		u.svc.set(nil, nil, cause)
		_, err := u.client.PayOrder(t.Context(), tradeunit.PayOrderRequest{Mchid: "m", OrderNo: "n", PaymentID: "p"})
		if got, want := tradeunit.ErrorCode(err), tradeunit.CodeInternal; got != want {
			t.Fatalf("code = %s, want %s", got, want)
		}
		if got, want := tradeunit.ErrorMessage(err), "internal error"; got != want {
			t.Errorf("message = %q, want %q", got, want)
		}
		if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "store.PayOrder") {
			t.Errorf("client error %q leaks the internal cause", err)
		}
		if !tradeunit.Answered(err) {
			t.Errorf("Answered(%v) = false for an answer of the unit", err)
		}
		if l := logs.String(); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, "PayOrder") || !strings.Contains(l, "hunter2") {
			t.Errorf("server log %q lacks the level, method or cause", l)
		}
	}
}

func TestOrderRoundTrip(t *testing.T) {
	u := startUnit(t)
	want := testOrder()
	u.svc.set(testOrder(), nil, nil)
	for _, c := range calls {
		if c.name == "CreateRefund" || c.name == "Refund" {
			continue // they return a refund
		}
		t.Run(c.name, func(t *testing.T) {
			var got *tradeunit.Order
			var err error
			switch c.name {
			case "CreateOrder":
				got, err = u.client.CreateOrder(t.Context(), tradeunit.CreateOrderRequest{})
			case "Order":
				got, err = u.client.Order(t.Context(), "m", "n")
			case "OrderByOutTradeNo":
				got, err = u.client.OrderByOutTradeNo(t.Context(), "m", "o")
			case "PayOrder":
				got, err = u.client.PayOrder(t.Context(), tradeunit.PayOrderRequest{})
			case "CloseOrder":
				got, err = u.client.CloseOrder(t.Context(), "m", "n")
			case "SupersedeAttempt":
				got, err = u.client.SupersedeAttempt(t.Context(), "m", "o", 7)
			case "CloseSuperseded":
				got, err = u.client.CloseSuperseded(t.Context(), "m", "n", "w")
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}

	// Unset times and no abandoned units survive as zero and nil.
	bare := &tradeunit.Order{OrderNo: "n", State: tradeunit.StateNotPay, CreateTime: want.CreateTime}
	u.svc.set(bare, nil, nil)
	got, err := u.client.Order(t.Context(), "m", "n")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, bare) {
		t.Errorf("got  %+v\nwant %+v", got, bare)
	}
}

func TestRefundRoundTrip(t *testing.T) {
	u := startUnit(t)
	want := testRefund()
	u.svc.set(nil, testRefund(), nil)
	got, err := u.client.CreateRefund(t.Context(), tradeunit.CreateRefundRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("CreateRefund: got %+v, want %+v", got, want)
	}
	got, err = u.client.Refund(t.Context(), "m", "r")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Refund: got %+v, want %+v", got, want)
	}
}

func TestRequestsRoundTrip(t *testing.T) {
	u := startUnit(t)
	u.svc.set(testOrder(), testRefund(), nil)
	ctx := t.Context()
	createOrder := tradeunit.CreateOrderRequest{
		Mchid: "1900000109", OutTradeNo: "out-trade-0001", Description: "公仔",
		Amount: tradeunit.Amount{Total: 8_888, Currency: "USD"}, AbandonedUnits: []tradeunit.UnitID{3, 5},
	}
	pay := tradeunit.PayOrderRequest{Mchid: "1900000109", OrderNo: "100001", PaymentID: "pay-1"}
	createRefund := tradeunit.CreateRefundRequest{
		Mchid: "1900000109", OrderNo: "100001", OutRefundNo: "r-1",
		Amount: tradeunit.RefundAmount{Refund: 1, Currency: "USD"}, Reason: "坏了",
	}
	tests := []struct {
		do   func() error
		want []any
	}{
		{func() error { _, err := u.client.CreateOrder(ctx, createOrder); return err }, []any{"CreateOrder", createOrder}},
		{func() error { _, err := u.client.Order(ctx, "mch", "no"); return err }, []any{"Order", "mch", "no"}},
		{func() error { _, err := u.client.OrderByOutTradeNo(ctx, "mch", "out"); return err }, []any{"OrderByOutTradeNo", "mch", "out"}},
		{func() error { _, err := u.client.PayOrder(ctx, pay); return err }, []any{"PayOrder", pay}},
		{func() error { _, err := u.client.CloseOrder(ctx, "mch", "no"); return err }, []any{"CloseOrder", "mch", "no"}},
		{func() error { _, err := u.client.CreateRefund(ctx, createRefund); return err }, []any{"CreateRefund", createRefund}},
		{func() error { _, err := u.client.Refund(ctx, "mch", "ref"); return err }, []any{"Refund", "mch", "ref"}},
	}
	for _, tt := range tests {
		if err := tt.do(); err != nil {
			t.Fatalf("%v: %v", tt.want[0], err)
		}
		if got := u.svc.lastCall(); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("service called with %+v, want %+v", got, tt.want)
		}
	}
}

// TestConsistencyRoundTrip: a read's consistency, set in the caller's ctx,
// reaches the service's ctx; a call that sets none arrives real-time.
func TestConsistencyRoundTrip(t *testing.T) {
	u := startUnit(t)
	u.svc.set(testOrder(), testRefund(), nil)
	eventual := tradeunit.WithConsistency(t.Context(), tradeunit.Eventual)
	for _, c := range calls {
		for _, tt := range []struct {
			ctx  context.Context
			want tradeunit.Consistency
		}{{t.Context(), tradeunit.RealTime}, {eventual, tradeunit.Eventual}} {
			if err := c.do(tt.ctx, u.client); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			want := tt.want
			if c.name != "Order" && c.name != "OrderByOutTradeNo" && c.name != "Refund" {
				want = tradeunit.RealTime // changes always go to the primary
			}
			u.svc.mu.Lock()
			got := u.svc.consistency
			u.svc.mu.Unlock()
			if got != want {
				t.Errorf("%s with %s: service saw %s, want %s", c.name, tradeunit.ConsistencyFrom(tt.ctx), got, want)
			}
		}
	}
}

func TestNilResultIsSystemError(t *testing.T) {
	u := startUnit(t) // the fake returns (nil, nil) until set
	for _, c := range calls {
		if err := c.do(t.Context(), u.client); tradeunit.ErrorCode(err) != tradeunit.CodeInternal {
			t.Errorf("%s: got %v, want SYSTEM_ERROR", c.name, err)
		}
	}
}

// wantTransport fails unless err is the UNIT_UNAVAILABLE transport error of
// method.
func wantTransport(tb testing.TB, err error, method string) {
	tb.Helper()
	if tradeunit.Answered(err) {
		tb.Errorf("Answered(%v) = true, want false", err)
	}
	if got, want := tradeunit.ErrorCode(err), tradeunit.CodeUnitUnavailable; got != want {
		tb.Errorf("code of %v = %s, want %s", err, got, want)
	}
	var e *tradeunit.Error
	if errors.As(err, &e) {
		if got, want := e.Op, "rpc."+method; got != want {
			tb.Errorf("Op = %q, want %q", got, want)
		}
		if !strings.HasPrefix(e.Message, "unit unreachable: ") {
			tb.Errorf("Message = %q, want prefix %q", e.Message, "unit unreachable: ")
		}
		if _, ok := status.FromError(e.Err); !ok {
			tb.Errorf("Err %v does not wrap the gRPC status", e.Err)
		}
	}
}

func TestStoppedServerFailsFast(t *testing.T) {
	u := startUnit(t)
	u.svc.set(testOrder(), nil, nil)
	if _, err := u.client.Order(t.Context(), "m", "n"); err != nil {
		t.Fatal(err) // the connection is up before the server goes away
	}
	u.srv.Stop()
	for _, c := range calls {
		start := time.Now()
		err := c.do(context.Background(), u.client) // no deadline: failing fast is the client's job
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s took %v against a stopped server, want < 2s", c.name, d)
		}
		method := map[string]string{"Order": "GetOrder", "OrderByOutTradeNo": "GetOrderByOutTradeNo", "Refund": "GetRefund"}[c.name]
		if method == "" {
			method = c.name
		}
		wantTransport(t, err, method)
	}
}

func TestNeverStartedServerFailsFast(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close() // nothing listens there now
	c, err := Dial(addr)
	if err != nil {
		t.Fatalf("Dial must not connect, got %v", err)
	}
	defer c.Close()
	start := time.Now()
	_, err = c.Order(context.Background(), "m", "n")
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("call took %v, want < 2s", d)
	}
	wantTransport(t, err, "GetOrder")
}

func TestCallerContextIsNoAnswer(t *testing.T) {
	u := startUnit(t)
	u.svc.set(testOrder(), nil, nil)

	expired, cancel := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel()
	_, err := u.client.Order(expired, "m", "n")
	wantTransport(t, err, "GetOrder")
	if got := status.Code(err); got != codes.DeadlineExceeded {
		t.Errorf("status code = %v, want DeadlineExceeded", got)
	}

	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = u.client.Order(canceled, "m", "n")
	wantTransport(t, err, "GetOrder")

	// A unit that hangs until the deadline, then reports the context error
	// wrapped as SYSTEM_ERROR: still no definite answer.
	u.svc.mu.Lock()
	u.svc.block = true
	u.svc.mu.Unlock()
	short, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err = u.client.PayOrder(short, tradeunit.PayOrderRequest{})
	wantTransport(t, err, "PayOrder")
}

func TestServerContextErrorIsNotDomainAnswer(t *testing.T) {
	// The server side of the case above, without the client's own deadline
	// racing it: a handler whose ctx is done and whose error is that.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := toStatus(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), "PayOrder", tradeunit.Internal("store.PayOrder", ctx.Err()))
	if got := status.Code(err); got != codes.Canceled {
		t.Errorf("status code = %v, want Canceled", got)
	}
	if got := fromStatus("PayOrder", err); tradeunit.Answered(got) {
		t.Errorf("Answered(%v) = true, want false", got)
	}
	// The storage reports the caller's deadline as UNIT_UNAVAILABLE with the
	// context error in its chain (store/sqlstore's faults): still no answer.
	err = toStatus(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), "PayOrder", tradeunit.Unavailable("store.PayOrder", "nothing was written", ctx.Err()))
	if got := status.Code(err); got != codes.Canceled {
		t.Errorf("status code = %v, want Canceled", got)
	}
	if got := fromStatus("PayOrder", err); tradeunit.Answered(got) {
		t.Errorf("Answered(%v) = true, want false", got)
	}
	// A live ctx: a context error from deep inside is a unit fault.
	err = toStatus(t.Context(), slog.New(slog.NewTextHandler(io.Discard, nil)), "PayOrder", tradeunit.Internal("store.PayOrder", context.DeadlineExceeded))
	if got := tradeunit.ErrorCode(fromStatus("PayOrder", err)); got != tradeunit.CodeInternal {
		t.Errorf("code = %s, want SYSTEM_ERROR", got)
	}
}

func TestStatusWithoutErrorInfoIsNoAnswer(t *testing.T) {
	for _, err := range []error{
		status.Error(codes.Unknown, "panic somewhere"),
		status.Error(codes.NotFound, "no ErrorInfo: a proxy in between, not the unit"),
		errors.New("not a status at all"),
	} {
		if got := fromStatus("GetOrder", err); tradeunit.Answered(got) || tradeunit.ErrorCode(got) != tradeunit.CodeUnitUnavailable {
			t.Errorf("fromStatus(%v) = %v, want a UNIT_UNAVAILABLE transport error", err, got)
		}
	}
	st, _ := status.New(codes.NotFound, "x").WithDetails(&errdetails.ErrorInfo{Reason: "RESOURCE_NOT_EXISTS", Domain: "example.com"})
	if got := fromStatus("GetOrder", st.Err()); tradeunit.Answered(got) {
		t.Errorf("ErrorInfo of another domain: Answered(%v) = true, want false", got)
	}
	if !tradeunit.Answered(nil) || !tradeunit.Answered(tradeunit.Errorf(tradeunit.CodeUnitUnavailable, "x")) {
		t.Error("Answered is false for an error that did not come from the transport")
	}
}

func TestCheck(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, h := NewServer(&fakeService{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	c, err := Dial(lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, want := c.Addr(), lis.Addr().String(); got != want {
		t.Errorf("Addr() = %q, want %q", got, want)
	}

	if err := c.Check(t.Context()); err != nil {
		t.Fatalf("Check of a live server: %v", err)
	}

	// Draining: the replica answers, but not SERVING.
	h.SetServingStatus(ServiceName, healthpb.HealthCheckResponse_NOT_SERVING)
	err = c.Check(t.Context())
	if tradeunit.ErrorCode(err) != tradeunit.CodeUnitUnavailable || !tradeunit.Answered(err) {
		t.Errorf("Check of a draining server = %v, want a non-transport UNIT_UNAVAILABLE", err)
	}
	h.SetServingStatus(ServiceName, healthpb.HealthCheckResponse_SERVING)

	srv.Stop()
	start := time.Now()
	err = c.Check(context.Background())
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Check took %v against a stopped server, want < 2s", d)
	}
	if err == nil {
		t.Fatal("Check of a stopped server succeeded")
	}
	wantTransport(t, err, "Check")
}

// TestRequestIDReachesTheUnitLog: the request id of the caller's context
// travels in the call's metadata and is on the unit's log line of the call.
func TestRequestIDReachesTheUnitLog(t *testing.T) {
	var logs syncBuffer
	u := startUnitLogging(t, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	u.svc.set(testOrder(), nil, nil)
	ctx := tradeunit.WithRequestID(t.Context(), "req-4711")
	if _, err := u.client.Order(ctx, "m", "n"); err != nil {
		t.Fatal(err)
	}
	if l := logs.String(); !strings.Contains(l, "request_id=req-4711") || !strings.Contains(l, "method=GetOrder") {
		t.Errorf("unit log %q lacks the call with its request id", l)
	}
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
