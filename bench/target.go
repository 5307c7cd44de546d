package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"tradeunit"
	"tradeunit/dsn"
	"tradeunit/orderno"
	"tradeunit/rpc"
	"tradeunit/secrets"
	"tradeunit/store/sqlstore"
	unitpkg "tradeunit/unit"
)

// Target is what a run drives. Errors carry tradeunit codes.
type Target interface {
	Create(ctx context.Context, outTradeNo string, total int64) (orderNo string, attempts int, err error)
	Pay(ctx context.Context, orderNo, paymentID string) error
	Close(ctx context.Context, orderNo string) error
	Refund(ctx context.Context, orderNo, outRefundNo string, amount int64) error
	Query(ctx context.Context, orderNo string) (tradeunit.TradeState, int64, error)
	// QueryByOutTradeNo returns the number of the order of the merchant's
	// own number.
	QueryByOutTradeNo(ctx context.Context, outTradeNo string) (orderNo string, err error)
	Release() error
}

// OpenTarget opens a target named by spec:
//
//	http://HOST:PORT            the public API through a proxy (needs an API key)
//	grpc://ADDR[,ADDR...]       one unit's logic-service replicas, directly
//	sqlite:PATH | mysql:DSN     one unit's storage, directly (creates only)
//
// opts are the dial options of a grpc:// target (its certificate: rpc.WithKeys).
func OpenTarget(ctx context.Context, spec, apiKey, mchid string, unit tradeunit.UnitID, concurrency int, opts ...grpc.DialOption) (Target, error) {
	switch {
	case strings.HasPrefix(spec, "http://"), strings.HasPrefix(spec, "https://"):
		if apiKey == "" {
			return nil, fmt.Errorf("target %s needs an API key", spec)
		}
		return newHTTPTarget(spec, apiKey, concurrency), nil
	case strings.HasPrefix(spec, "grpc://"):
		return newGRPCTarget(strings.Split(strings.TrimPrefix(spec, "grpc://"), ","), mchid, opts...)
	case strings.HasPrefix(spec, "sqlite:"), strings.HasPrefix(spec, "mysql:"):
		d, err := dsn.Parse(spec)
		if err != nil {
			return nil, err
		}
		return OpenStorageTarget(ctx, d, secrets.FromEnv(os.Getenv), mchid, unit)
	}
	return nil, fmt.Errorf("unknown target %q: want http://, grpc://, sqlite: or mysql:", spec)
}

// OpenStorageTarget opens unit's storage d as a target, with the MySQL
// password passwords knows.
func OpenStorageTarget(ctx context.Context, d dsn.DSN, passwords dsn.Passwords, mchid string, unit tradeunit.UnitID) (Target, error) {
	s, err := sqlstore.Open(ctx, d, passwords)
	if err != nil {
		return nil, err
	}
	return &storeTarget{store: s, mchid: mchid, unit: unit, seq: unitpkg.NewSequencer(s, unitpkg.DefaultSequenceBlock)}, nil
}

// httpTarget calls the public REST API.
type httpTarget struct {
	base, auth string
	client     *http.Client
}

func newHTTPTarget(base, key string, conns int) *httpTarget {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = conns + 16
	tr.MaxIdleConnsPerHost = conns + 16
	return &httpTarget{base: strings.TrimSuffix(base, "/"), auth: "Bearer " + key,
		client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

func (t *httpTarget) do(ctx context.Context, method, path string, body any, out any) (http.Header, error) {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, t.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", t.auth)
	req.Header.Set("Content-Type", "application/json")
	resp, err := t.client.Do(req)
	if err != nil {
		return nil, &tradeunit.Error{Code: codeTransport, Message: "request failed", Err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, &tradeunit.Error{Code: codeTransport, Message: "read response", Err: err}
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Code    tradeunit.Code `json:"code"`
			Message string         `json:"message"`
		}
		if json.Unmarshal(data, &e) != nil || e.Code == "" {
			e.Code = tradeunit.Code(fmt.Sprintf("HTTP_%d", resp.StatusCode))
		}
		return resp.Header, &tradeunit.Error{Code: e.Code, Message: e.Message}
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return nil, err
		}
	}
	return resp.Header, nil
}

// codeTransport marks a request that got no answer: its outcome is unknown.
const codeTransport tradeunit.Code = "TRANSPORT"

type orderResp struct {
	OrderNo    string               `json:"order_no"`
	TradeState tradeunit.TradeState `json:"trade_state"`
	Amount     struct {
		Refunded int64 `json:"refunded"`
	} `json:"amount"`
}

func (t *httpTarget) Create(ctx context.Context, out string, total int64) (string, int, error) {
	var o orderResp
	h, err := t.do(ctx, "POST", "/v3/orders", map[string]any{"out_trade_no": out, "description": "bench",
		"amount": map[string]any{"total": total, "currency": "CNY"}}, &o)
	attempts := 1
	if v := h.Get("Create-Attempts"); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			attempts = n
		}
	}
	return o.OrderNo, attempts, err
}

func (t *httpTarget) Pay(ctx context.Context, no, paymentID string) error {
	_, err := t.do(ctx, "POST", "/v3/orders/"+no+"/pay", map[string]any{"payment_id": paymentID}, nil)
	return err
}

func (t *httpTarget) Close(ctx context.Context, no string) error {
	_, err := t.do(ctx, "POST", "/v3/orders/"+no+"/close", nil, nil)
	return err
}

func (t *httpTarget) Refund(ctx context.Context, no, outRefundNo string, amount int64) error {
	_, err := t.do(ctx, "POST", "/v3/refunds", map[string]any{"order_no": no, "out_refund_no": outRefundNo,
		"amount": map[string]any{"refund": amount, "currency": "CNY"}}, nil)
	return err
}

func (t *httpTarget) Query(ctx context.Context, no string) (tradeunit.TradeState, int64, error) {
	var o orderResp
	_, err := t.do(ctx, "GET", "/v3/orders/"+no, nil, &o)
	return o.TradeState, o.Amount.Refunded, err
}

func (t *httpTarget) QueryByOutTradeNo(ctx context.Context, out string) (string, error) {
	var o orderResp
	_, err := t.do(ctx, "GET", "/v3/orders/out-trade-no/"+url.PathEscape(out), nil, &o)
	return o.OrderNo, err
}

func (t *httpTarget) Release() error { t.client.CloseIdleConnections(); return nil }

// grpcTarget calls one unit's logic services directly, spreading calls over
// its replicas as the proxy would.
type grpcTarget struct {
	clients []*rpc.Client
	next    atomic.Uint64
	mchid   string
}

func newGRPCTarget(addrs []string, mchid string, opts ...grpc.DialOption) (*grpcTarget, error) {
	t := &grpcTarget{mchid: mchid}
	for _, a := range addrs {
		c, err := rpc.Dial(a, opts...)
		if err != nil {
			t.Release()
			return nil, err
		}
		t.clients = append(t.clients, c)
	}
	return t, nil
}

func (t *grpcTarget) svc() tradeunit.OrderService {
	return t.clients[t.next.Add(1)%uint64(len(t.clients))]
}

func (t *grpcTarget) Create(ctx context.Context, out string, total int64) (string, int, error) {
	o, err := t.svc().CreateOrder(ctx, tradeunit.CreateOrderRequest{Mchid: t.mchid, OutTradeNo: out,
		Description: "bench", Amount: tradeunit.Amount{Total: total, Currency: "CNY"}})
	if err != nil {
		return "", 1, transportCode(err)
	}
	return o.OrderNo, 1, nil
}

func (t *grpcTarget) Pay(ctx context.Context, no, paymentID string) error {
	_, err := t.svc().PayOrder(ctx, tradeunit.PayOrderRequest{Mchid: t.mchid, OrderNo: no, PaymentID: paymentID})
	return transportCode(err)
}

func (t *grpcTarget) Close(ctx context.Context, no string) error {
	_, err := t.svc().CloseOrder(ctx, t.mchid, no)
	return transportCode(err)
}

func (t *grpcTarget) Refund(ctx context.Context, no, outRefundNo string, amount int64) error {
	_, err := t.svc().CreateRefund(ctx, tradeunit.CreateRefundRequest{Mchid: t.mchid, OrderNo: no,
		OutRefundNo: outRefundNo, Amount: tradeunit.RefundAmount{Refund: amount, Currency: "CNY"}})
	return transportCode(err)
}

func (t *grpcTarget) Query(ctx context.Context, no string) (tradeunit.TradeState, int64, error) {
	o, err := t.svc().Order(ctx, t.mchid, no)
	if err != nil {
		return "", 0, transportCode(err)
	}
	return o.State, o.Refunded, nil
}

func (t *grpcTarget) QueryByOutTradeNo(ctx context.Context, out string) (string, error) {
	o, err := t.svc().OrderByOutTradeNo(ctx, t.mchid, out)
	if err != nil {
		return "", transportCode(err)
	}
	return o.OrderNo, nil
}

func (t *grpcTarget) Release() error {
	for _, c := range t.clients {
		c.Close()
	}
	return nil
}

// transportCode relabels an RPC transport failure, whose outcome is unknown.
func transportCode(err error) error {
	if err != nil && !tradeunit.Answered(err) {
		return &tradeunit.Error{Code: codeTransport, Message: "rpc failed", Err: err}
	}
	return err
}

// storeTarget issues the create transaction (order row + event row)
// straight to a unit's storage: the ceiling the layers above can approach.
type storeTarget struct {
	store tradeunit.Store
	mchid string
	unit  tradeunit.UnitID
	seq   *unitpkg.Sequencer // as the logic service numbers orders
}

func (t *storeTarget) Create(ctx context.Context, out string, total int64) (string, int, error) {
	now := time.Now().UTC().Truncate(time.Microsecond)
	seq, err := t.seq.Next(ctx)
	if err != nil {
		return "", 1, err
	}
	n, err := orderno.New(t.unit, now, seq)
	if err != nil {
		return "", 1, err
	}
	o, _, err := t.store.CreateOrder(ctx, &tradeunit.Order{OrderNo: n.String(), Mchid: t.mchid, OutTradeNo: out,
		Description: "bench", Amount: tradeunit.Amount{Total: total, Currency: "CNY"}, CreateTime: now})
	if err != nil {
		return "", 1, err
	}
	return o.OrderNo, 1, nil
}

func (t *storeTarget) Pay(ctx context.Context, no, paymentID string) error {
	_, err := t.store.PayOrder(ctx, t.mchid, no, paymentID, time.Now())
	return err
}

func (t *storeTarget) Close(ctx context.Context, no string) error {
	_, err := t.store.CloseOrder(ctx, t.mchid, no, time.Now())
	return err
}

func (t *storeTarget) Refund(ctx context.Context, no, outRefundNo string, amount int64) error {
	_, _, err := t.store.CreateRefund(ctx, &tradeunit.Refund{Mchid: t.mchid, OrderNo: no, OutRefundNo: outRefundNo,
		Amount: tradeunit.RefundAmount{Refund: amount, Currency: "CNY"}, CreateTime: time.Now()})
	return err
}

func (t *storeTarget) Query(ctx context.Context, no string) (tradeunit.TradeState, int64, error) {
	o, err := t.store.Order(ctx, no)
	if err != nil {
		return "", 0, err
	}
	return o.State, o.Refunded, nil
}

func (t *storeTarget) QueryByOutTradeNo(ctx context.Context, out string) (string, error) {
	o, err := t.store.OrderByOutTradeNo(ctx, t.mchid, out)
	if err != nil {
		return "", err
	}
	return o.OrderNo, nil
}

func (t *storeTarget) Release() error { return t.store.Close() }
