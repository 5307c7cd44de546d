package proxy

import (
	"context"
	"net/http"
	"time"

	"tradeunit"
	"tradeunit/query"
)

// queryHandler serves the merchants' non-real-time API (listing, daily
// statistics, bills) from the query store, with the proxy's authentication
// and error shape. Nothing of the live path goes through it.
func (p *Proxy) queryHandler() http.Handler {
	var r query.Reader = noQueryStore{}
	if p.query != nil {
		r = p.query
	}
	auth := func(r *http.Request) (string, error) {
		mchid := p.merchantOf(r)
		if mchid == "" {
			return "", errUnauthorized
		}
		return mchid, nil
	}
	return query.NewHandler(r, auth, p.writeError, time.Now)
}

// noQueryStore is the Reader of a proxy run without a query store.
type noQueryStore struct{}

var errNoQueryStore = tradeunit.Errorf(tradeunit.CodeQueryUnavailable, "this proxy has no query store (--query-store); the live order API is not affected")

func (noQueryStore) ListOrders(context.Context, query.ListQuery) (query.OrderPage, error) {
	return query.OrderPage{}, errNoQueryStore
}
func (noQueryStore) DailyStats(context.Context, string, query.Date) (query.Stats, error) {
	return query.Stats{}, errNoQueryStore
}
func (noQueryStore) TradeBill(context.Context, string, query.Date) (query.Bill, error) {
	return query.Bill{}, errNoQueryStore
}
func (noQueryStore) AsOf(context.Context) (time.Time, error) { return time.Time{}, errNoQueryStore }
func (noQueryStore) Zone() *time.Location                    { return query.ChinaStandardTime }
