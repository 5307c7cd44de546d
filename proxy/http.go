package proxy

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"tradeunit"
)

// maxBody bounds request bodies; real ones are a few hundred bytes.
const maxBody = 64 << 10

// Handler returns the public API.
func (p *Proxy) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v3/orders", p.observe("create", p.auth(p.handleCreateOrder)))
	mux.HandleFunc("GET /v3/orders/{order_no}", p.observe("get", p.auth(p.handleGetOrder)))
	mux.HandleFunc("GET /v3/orders/out-trade-no/{out_trade_no}", p.observe("get_by_out_trade_no", p.auth(p.handleGetOrderByOutTradeNo)))
	mux.HandleFunc("POST /v3/orders/{order_no}/pay", p.observe("pay", p.auth(p.handlePayOrder)))
	mux.HandleFunc("POST /v3/orders/{order_no}/close", p.observe("close", p.auth(p.handleCloseOrder)))
	mux.HandleFunc("POST /v3/refunds", p.observe("refund", p.auth(p.handleCreateRefund)))
	mux.HandleFunc("GET /v3/refunds/{out_refund_no}", p.observe("get_refund", p.auth(p.handleGetRefund)))
	queries := p.queryHandler()
	for _, q := range []struct{ op, path string }{{"list", "/v3/orders"}, {"daily_statistics", "/v3/statistics/daily"},
		{"tradebill", "/v3/bill/tradebill"}, {"tradebill_download", "/v3/billdownload/tradebill"}} {
		mux.HandleFunc("GET "+q.path, p.observe(q.op, queries.ServeHTTP))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	// Operational metrics, unauthenticated like /healthz: they carry unit
	// numbers and counts, never merchant data.
	mux.Handle("GET /metrics", promhttp.HandlerFor(p.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if allow := allowed(mux, r); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			p.writeError(w, r, tradeunit.Errorf(codeMethodNotAllowed, "%s is not allowed on %s; allowed: %s",
				r.Method, r.URL.Path, strings.Join(allow, ", ")))
			return
		}
		p.writeError(w, r, tradeunit.Errorf(tradeunit.CodeNotFound, "no endpoint %s %s", r.Method, r.URL.Path))
	})
	return p.withRequestID(jsonMuxAnswers(mux, p.writeError))
}

// allowed returns the methods another pattern than the catch-all takes
// r's path with: the answer to a wrong method is 405 with them, not 404.
func allowed(mux *http.ServeMux, r *http.Request) []string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "" && pattern != "/" {
			out = append(out, m)
		}
	}
	return out
}

// jsonMuxAnswers answers in the API's JSON error shape what the mux would
// answer itself: a path it would redirect to its clean form (a double
// slash, a dot segment) is 404, never a redirect page. The API's own
// handlers never answer 3xx.
func jsonMuxAnswers(mux *http.ServeMux, writeError func(http.ResponseWriter, *http.Request, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(&muxAnswer{ResponseWriter: w, r: r, writeError: writeError}, r)
	})
}

// muxAnswer rewrites a redirect of the mux, and drops the text body the
// mux writes after it.
type muxAnswer struct {
	http.ResponseWriter
	r          *http.Request
	writeError func(http.ResponseWriter, *http.Request, error)
	replaced   bool
}

func (m *muxAnswer) WriteHeader(status int) {
	if status < 300 || status >= 400 {
		m.ResponseWriter.WriteHeader(status)
		return
	}
	m.replaced = true
	m.Header().Del("Location")
	m.Header().Del("Content-Type")
	m.writeError(m.ResponseWriter, m.r, tradeunit.Errorf(tradeunit.CodeNotFound, "no endpoint %s %s", m.r.Method, m.r.URL.Path))
}

func (m *muxAnswer) Write(b []byte) (int, error) {
	if m.replaced {
		return len(b), nil
	}
	return m.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (m *muxAnswer) Unwrap() http.ResponseWriter { return m.ResponseWriter }

type ctxKey int

const mchidKey ctxKey = 0

// withRequestID gives every request an id, returned in the Request-ID header,
// passed to the units (tradeunit.WithRequestID) and logged with any failure
// there and here; it turns a panic into a 500, and writes the access log
// when it is on.
func (p *Proxy) withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b [12]byte
		rand.Read(b[:])
		id := hex.EncodeToString(b[:])
		w.Header().Set("Request-ID", id)
		r = r.WithContext(tradeunit.WithRequestID(r.Context(), id))
		if max := p.cfg.MaxHeaderBytes; max > 0 && headerBytes(r) > max {
			w.Header().Set("Connection", "close")
			p.writeError(w, r, tradeunit.Errorf(codeHeadersTooLarge, "request headers exceed %d bytes", max))
			return
		}
		if p.cfg.AccessLog {
			sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
			start := time.Now()
			defer func() {
				p.log.Info("access", "request_id", id, "method", r.Method, "path", r.URL.Path, "status", sw.status,
					"duration", time.Since(start), "remote", r.RemoteAddr)
			}()
			w = sw
		}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				p.writeError(w, r, tradeunit.Internal("proxy.handler", fmt.Errorf("panic: %v", v)))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// headerBytes approximates the size of r's header block as the client sent
// it: the request line and every "Name: value\r\n".
func headerBytes(r *http.Request) int {
	n := len(r.Method) + len(r.RequestURI) + len(r.Proto) + 4
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n + len(r.Host) + 8 // Host: is not in r.Header
}

// observe counts the requests of one operation by status, and their latency.
func (p *Proxy) observe(op string, next http.HandlerFunc) http.HandlerFunc {
	requests := p.metrics.httpRequests.MustCurryWith(map[string]string{"op": op})
	duration := p.metrics.httpDuration.WithLabelValues(op)
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next(sw, r)
		duration.Observe(time.Since(start).Seconds())
		requests.WithLabelValues(strconv.Itoa(sw.status)).Inc()
	}
}

// statusWriter remembers the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}

// auth resolves the merchant from "Authorization: Bearer <api_key>". The
// merchant is always the key's owner, never a field of the request.
func (p *Proxy) auth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		mchid := p.merchantOf(r)
		if mchid == "" {
			p.writeError(w, r, errUnauthorized)
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), mchidKey, mchid)))
	}
}

var errUnauthorized = tradeunit.Errorf(tradeunit.CodeUnauthorized, "missing or unknown API key; send Authorization: Bearer <api_key>")

// merchantOf returns the merchant whose API key the request carries ("":
// none or unknown).
func (p *Proxy) merchantOf(r *http.Request) string {
	scheme, key, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	mchid := ""
	if ok && strings.EqualFold(scheme, "Bearer") { // schemes are case-insensitive (RFC 9110 §11.1)
		mchid = p.keys[sha256.Sum256([]byte(strings.TrimSpace(key)))]
	}
	if tradeunit.IsProbe(mchid) {
		return "" // never reachable: Credentials refuse it; checked again here
	}
	return mchid
}

func mchidOf(r *http.Request) string { s, _ := r.Context().Value(mchidKey).(string); return s }

func (p *Proxy) handleCreateOrder(w http.ResponseWriter, r *http.Request) {
	var body createOrderBody
	if err := decodeBody(w, r, &body); err != nil {
		p.writeError(w, r, err)
		return
	}
	o, attempts, err := p.createOrder(r.Context(), tradeunit.CreateOrderRequest{
		Mchid: mchidOf(r), OutTradeNo: body.OutTradeNo, Description: body.Description,
		Amount: tradeunit.Amount{Total: body.Amount.Total, Currency: body.Amount.Currency},
	})
	// How many units this create called: more than one is an order retry.
	w.Header().Set("Create-Attempts", strconv.Itoa(attempts))
	p.writeOrder(w, r, o, err)
}

// readContext returns the request's context carrying the consistency its
// ?consistency= asks for (realtime, the default, or eventual), which the
// unit honours (see tradeunit.WithConsistency).
func readContext(r *http.Request) (context.Context, error) {
	c, err := tradeunit.ParseConsistency(r.URL.Query().Get("consistency"))
	if err != nil {
		return nil, err
	}
	return tradeunit.WithConsistency(r.Context(), c), nil
}

func (p *Proxy) handleGetOrder(w http.ResponseWriter, r *http.Request) {
	orderNo := r.PathValue("order_no")
	ctx, err := readContext(r)
	if err != nil {
		p.writeError(w, r, err)
		return
	}
	o, err := callOrder(ctx, p, orderNo, "get", func(ctx context.Context, svc tradeunit.OrderService) (*tradeunit.Order, error) {
		return svc.Order(ctx, mchidOf(r), orderNo)
	})
	p.writeOrder(w, r, o, err)
}

func (p *Proxy) handleGetOrderByOutTradeNo(w http.ResponseWriter, r *http.Request) {
	mchid, outTradeNo := mchidOf(r), r.PathValue("out_trade_no")
	if err := tradeunit.ValidateOutTradeNo(outTradeNo); err != nil {
		p.writeError(w, r, err)
		return
	}
	ctx, err := readContext(r)
	if err != nil {
		p.writeError(w, r, err)
		return
	}
	o, err := p.orderByOutTradeNo(ctx, mchid, outTradeNo)
	p.writeOrder(w, r, o, err)
}

func (p *Proxy) handlePayOrder(w http.ResponseWriter, r *http.Request) {
	var body payOrderBody
	if err := decodeBody(w, r, &body); err != nil {
		p.writeError(w, r, err)
		return
	}
	req := tradeunit.PayOrderRequest{Mchid: mchidOf(r), OrderNo: r.PathValue("order_no"), PaymentID: body.PaymentID}
	if err := req.Validate(); err != nil {
		p.writeError(w, r, err)
		return
	}
	o, err := callOrder(r.Context(), p, req.OrderNo, "pay", func(ctx context.Context, svc tradeunit.OrderService) (*tradeunit.Order, error) {
		return svc.PayOrder(ctx, req)
	})
	p.writeOrder(w, r, o, err)
}

func (p *Proxy) handleCloseOrder(w http.ResponseWriter, r *http.Request) {
	orderNo := r.PathValue("order_no")
	_, err := callOrder(r.Context(), p, orderNo, "close", func(ctx context.Context, svc tradeunit.OrderService) (*tradeunit.Order, error) {
		return svc.CloseOrder(ctx, mchidOf(r), orderNo)
	})
	if err != nil {
		p.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (p *Proxy) handleCreateRefund(w http.ResponseWriter, r *http.Request) {
	var body createRefundBody
	if err := decodeBody(w, r, &body); err != nil {
		p.writeError(w, r, err)
		return
	}
	req := tradeunit.CreateRefundRequest{
		Mchid: mchidOf(r), OrderNo: body.OrderNo, OutRefundNo: body.OutRefundNo,
		Amount: tradeunit.RefundAmount{Refund: body.Amount.Refund, Currency: body.Amount.Currency}, Reason: body.Reason,
	}
	if err := req.Validate(); err != nil {
		p.writeError(w, r, err)
		return
	}
	f, err := p.createRefund(r.Context(), req)
	p.writeRefund(w, r, f, err)
}

func (p *Proxy) handleGetRefund(w http.ResponseWriter, r *http.Request) {
	mchid, outRefundNo := mchidOf(r), r.PathValue("out_refund_no")
	if err := tradeunit.ValidateOutRefundNo(outRefundNo); err != nil {
		p.writeError(w, r, err)
		return
	}
	ctx, err := readContext(r)
	if err != nil {
		p.writeError(w, r, err)
		return
	}
	f, err := p.refundByOutRefundNo(ctx, mchid, outRefundNo)
	p.writeRefund(w, r, f, err)
}

func (p *Proxy) writeOrder(w http.ResponseWriter, r *http.Request, o *tradeunit.Order, err error) {
	if err != nil {
		p.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toOrderJSON(o))
}

func (p *Proxy) writeRefund(w http.ResponseWriter, r *http.Request, f *tradeunit.Refund, err error) {
	if err != nil {
		p.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toRefundJSON(f))
}

// writeError writes {"code","message","detail"} with the code's status. The
// cause chain of a fault is logged here, at the edge, and never sent.
func (p *Proxy) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := tradeunit.ErrorCode(err)
	status := statusOf(code)
	id := tradeunit.RequestID(r.Context())
	if status >= 500 {
		p.log.Error("request failed", "request_id", id, "method", r.Method, "path", r.URL.Path, "code", code, "err", err)
	} else {
		p.log.Debug("request refused", "request_id", id, "method", r.Method, "path", r.URL.Path, "code", code, "err", err)
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1") // every call is idempotent: retry it as it was
	}
	writeJSON(w, status, errorBody{Code: code, Message: tradeunit.ErrorMessage(err), Detail: errorDetail{RequestID: id}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// decodeBody reads one JSON object into v, rejecting unknown fields, so a
// misspelt field is an error rather than a silently missing value.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, tail := dec.Token(); tail != io.EOF {
			err = errors.New("trailing data after the JSON object")
		}
	}
	if err == nil {
		return nil
	}
	var (
		typeErr *json.UnmarshalTypeError
		maxErr  *http.MaxBytesError
		syntax  *json.SyntaxError
	)
	switch {
	case errors.As(err, &typeErr):
		return tradeunit.Errorf(tradeunit.CodeParamError, "field %s must be a JSON %s", typeErr.Field, jsonKind(typeErr.Type.Kind().String()))
	case errors.As(err, &maxErr):
		return tradeunit.Errorf(codeTooLarge, "request body exceeds %d bytes", maxBody)
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		return tradeunit.Errorf(tradeunit.CodeParamError, "request body is not valid JSON: %v", err)
	case errors.Is(err, io.EOF):
		return tradeunit.Errorf(tradeunit.CodeParamError, "request body is empty; send a JSON object")
	}
	return tradeunit.Errorf(tradeunit.CodeParamError, "bad request body: %v", err)
}

func jsonKind(goKind string) string {
	switch {
	case strings.HasPrefix(goKind, "int"), strings.HasPrefix(goKind, "uint"):
		return "integer"
	case goKind == "struct":
		return "object"
	}
	return goKind
}
