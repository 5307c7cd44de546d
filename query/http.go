package query

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"tradeunit"
)

// Reader is what the HTTP handler needs of a query store. *Store
// implements it; the proxy may pass one that wraps a store which cannot be
// reached yet. Every method's errors are PARAM_ERROR for a bad argument
// and QUERY_STORE_UNAVAILABLE when the storage cannot answer.
type Reader interface {
	ListOrders(ctx context.Context, q ListQuery) (OrderPage, error)
	DailyStats(ctx context.Context, mchid string, day Date) (Stats, error)
	TradeBill(ctx context.Context, mchid string, day Date) (Bill, error)
	// AsOf is the instant the store is known complete up to (zero: it
	// knows nothing yet).
	AsOf(ctx context.Context) (time.Time, error)
	// Zone is the zone merchants' days are in.
	Zone() *time.Location
}

var _ Reader = (*Store)(nil)

// The headers that mark an answer as non-real-time, beside the JSON fields
// as_of and lag_ms.
const (
	HeaderAsOf  = "Query-As-Of"
	HeaderLagMs = "Query-Lag-Ms"
	// HeaderBillSHA1 carries a bill download's SHA-1 (hex).
	HeaderBillSHA1 = "Bill-SHA1"
)

// handler serves the query API of NewHandler.
type handler struct {
	r        Reader
	auth     func(*http.Request) (string, error)
	writeErr func(http.ResponseWriter, *http.Request, error)
	now      func() time.Time
}

// NewHandler returns the merchants' query API over r:
//
//	GET /v3/orders?create_time_start=&create_time_end=&trade_state=&limit=&cursor=
//	GET /v3/statistics/daily?date=YYYY-MM-DD
//	GET /v3/bill/tradebill?bill_date=YYYY-MM-DD   {hash_type, hash_value, download_url}
//	GET /v3/billdownload/tradebill?bill_date=YYYY-MM-DD   the CSV
//
// auth names the request's merchant (its error is written as it is);
// writeErr writes every error, mapping codes to statuses (PARAM_ERROR 400,
// QUERY_STORE_UNAVAILABLE 503); now is the clock. Times are RFC 3339, the
// create range half-open. Every JSON answer has as_of (RFC 3339) and
// lag_ms, and every answer the headers Query-As-Of and Query-Lag-Ms: what
// it shows is complete only up to as_of. A store that knows nothing yet
// (no event applied, never caught up) answers QUERY_STORE_UNAVAILABLE
// rather than an empty answer that would look complete. A bill is ready
// once its day has ended in the store's zone and the store is complete up
// to that end: before, its contents and hash could still change. Another
// method is 405 with Allow.
func NewHandler(r Reader, auth func(*http.Request) (mchid string, err error),
	writeErr func(w http.ResponseWriter, r *http.Request, err error), now func() time.Time) http.Handler {
	h := &handler{r: r, auth: auth, writeErr: writeErr, now: now}
	mux := http.NewServeMux()
	// Method patterns: the mux answers another method 405 with Allow.
	mux.HandleFunc("GET /v3/orders", h.serve(h.listOrders))
	mux.HandleFunc("GET /v3/statistics/daily", h.serve(h.dailyStats))
	mux.HandleFunc("GET /v3/bill/tradebill", h.serve(h.tradeBill))
	mux.HandleFunc("GET /v3/billdownload/tradebill", h.serve(h.downloadBill))
	return mux
}

// mark is the non-real-time mark of an answer.
type mark struct {
	AsOf  string `json:"as_of"`
	LagMs int64  `json:"lag_ms"`
	asOf  time.Time
}

// serve authenticates, reads the store's as-of mark before the data (so
// that the data is complete at least up to it), sets the headers and
// writes what fn returns: a value as JSON with the mark, or an error.
func (h *handler) serve(fn func(r *http.Request, mchid string, m mark) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		mchid, err := h.auth(r)
		if err != nil {
			h.writeErr(w, r, err)
			return
		}
		asOf, err := h.r.AsOf(r.Context())
		if err == nil && asOf.IsZero() {
			err = tradeunit.Errorf(tradeunit.CodeQueryUnavailable, "the query store has not caught up with the order events yet; the live order API is not affected, retry later")
		}
		if err != nil {
			h.writeErr(w, r, err)
			return
		}
		lag := max(h.now().Sub(asOf), 0)
		m := mark{AsOf: asOf.UTC().Format(time.RFC3339Nano), LagMs: lag.Milliseconds(), asOf: asOf}
		v, err := fn(r, mchid, m)
		if err != nil {
			h.writeErr(w, r, err)
			return
		}
		w.Header().Set(HeaderAsOf, m.AsOf)
		w.Header().Set(HeaderLagMs, strconv.FormatInt(m.LagMs, 10))
		if bill, ok := v.(Bill); ok {
			w.Header().Set("Content-Type", "text/csv; charset=utf-8")
			w.Header().Set(HeaderBillSHA1, bill.SHA1)
			w.Header().Set("Content-Length", strconv.Itoa(len(bill.CSV)))
			w.Write(bill.CSV)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	}
}

func (h *handler) listOrders(r *http.Request, mchid string, m mark) (any, error) {
	p := r.URL.Query()
	if err := onlyParams(p, "create_time_start", "create_time_end", "trade_state", "limit", "cursor"); err != nil {
		return nil, err
	}
	q := ListQuery{Mchid: mchid, State: tradeunit.TradeState(p.Get("trade_state")), Cursor: p.Get("cursor")}
	var err error
	if q.CreateFrom, err = timeParam(p, "create_time_start"); err != nil {
		return nil, err
	}
	if q.CreateTo, err = timeParam(p, "create_time_end"); err != nil {
		return nil, err
	}
	if s := p.Get("limit"); s != "" {
		if q.Limit, err = strconv.Atoi(s); err != nil || q.Limit < 1 {
			return nil, tradeunit.Errorf(tradeunit.CodeParamError, "limit %q: want an integer from 1 to %d", s, MaxLimit)
		}
	}
	page, err := h.r.ListOrders(r.Context(), q)
	if err != nil {
		return nil, err
	}
	return struct {
		OrderPage
		mark
	}{page, m}, nil
}

func (h *handler) dailyStats(r *http.Request, mchid string, m mark) (any, error) {
	day, err := h.dateParam(r, "date")
	if err != nil {
		return nil, err
	}
	st, err := h.r.DailyStats(r.Context(), mchid, day)
	if err != nil {
		return nil, err
	}
	return struct {
		Stats
		mark
	}{st, m}, nil
}

// billReady reads the bill of the request's bill_date if it is ready.
func (h *handler) billReady(r *http.Request, mchid string, m mark) (Bill, Date, error) {
	day, err := h.dateParam(r, "bill_date")
	if err != nil {
		return Bill{}, Date{}, err
	}
	end := day.End(h.r.Zone())
	if h.now().Before(end) {
		return Bill{}, Date{}, tradeunit.Errorf(tradeunit.CodeParamError, "the bill of %s is not ready: the day has not ended (%s)", day, end.Format(time.RFC3339))
	}
	if m.asOf.Before(end) {
		return Bill{}, Date{}, tradeunit.Errorf(tradeunit.CodeQueryUnavailable, "the bill of %s is not ready: the query store is complete only up to %s; retry later", day, m.AsOf)
	}
	bill, err := h.r.TradeBill(r.Context(), mchid, day)
	return bill, day, err
}

func (h *handler) tradeBill(r *http.Request, mchid string, m mark) (any, error) {
	bill, day, err := h.billReady(r, mchid, m)
	if err != nil {
		return nil, err
	}
	// A path-absolute URL, resolved against the request's: the handler
	// does not know the public scheme and host (a TLS front may end
	// before it), and a Host header is the client's to forge.
	return struct {
		HashType    string `json:"hash_type"`
		HashValue   string `json:"hash_value"`
		DownloadURL string `json:"download_url"`
		mark
	}{"SHA1", bill.SHA1, "/v3/billdownload/tradebill?bill_date=" + day.String(), m}, nil
}

func (h *handler) downloadBill(r *http.Request, mchid string, m mark) (any, error) {
	bill, _, err := h.billReady(r, mchid, m)
	if err != nil {
		return nil, err
	}
	return bill, nil
}

func (h *handler) dateParam(r *http.Request, name string) (Date, error) {
	p := r.URL.Query()
	if err := onlyParams(p, name); err != nil {
		return Date{}, err
	}
	s := p.Get(name)
	if s == "" {
		return Date{}, tradeunit.Errorf(tradeunit.CodeParamError, "%s is required: YYYY-MM-DD", name)
	}
	day, err := ParseDate(s)
	if err != nil {
		return Date{}, tradeunit.Errorf(tradeunit.CodeParamError, "%s %q: want YYYY-MM-DD, e.g. 2026-12-01", name, s)
	}
	if today := DateOf(h.now(), h.r.Zone()); today.Start(time.UTC).Before(day.Start(time.UTC)) {
		return Date{}, tradeunit.Errorf(tradeunit.CodeParamError, "%s %s is after today (%s)", name, day, today)
	}
	return day, nil
}

// onlyParams refuses a parameter not named, and one given twice: a typo
// must not silently widen a query.
func onlyParams(p url.Values, names ...string) error {
	for k, v := range p {
		known := false
		for _, n := range names {
			known = known || k == n
		}
		if !known {
			return tradeunit.Errorf(tradeunit.CodeParamError, "unknown parameter %q", k)
		}
		if len(v) > 1 {
			return tradeunit.Errorf(tradeunit.CodeParamError, "parameter %q given %d times", k, len(v))
		}
	}
	return nil
}

func timeParam(p url.Values, name string) (time.Time, error) {
	s := p.Get(name)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil && strings.Contains(s, " ") {
		// An unescaped '+' of the offset reads back as a space.
		t, err = time.Parse(time.RFC3339Nano, strings.ReplaceAll(s, " ", "+"))
	}
	if err != nil {
		return time.Time{}, tradeunit.Errorf(tradeunit.CodeParamError, "%s %q: want an RFC 3339 time, e.g. 2026-12-01T00:00:00+08:00", name, s)
	}
	return t, nil
}
